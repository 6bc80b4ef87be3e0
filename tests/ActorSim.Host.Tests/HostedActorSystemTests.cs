using ActorSim.Actors;
using ActorSim.Persistence;
using Akka.Actor;

namespace ActorSim.Host.Tests;

/// <summary>run's actor system under Akka.Hosting (<see cref="HostedActorSystem"/>).</summary>
public class HostedActorSystemTests
{
    [Fact]
    public async Task The_hosted_system_takes_the_simulations_configuration_the_Marten_journal_with_a_database_and_stops_with_the_host()
    {
        var cs = Environment.GetEnvironmentVariable("ACTORSIM_DB") is { Length: > 0 } s ? s : throw new InvalidOperationException("ACTORSIM_DB is not set: run through scripts/test.sh");
        await using (var hosted = await HostedActorSystem.StartAsync("hosted-test", SimHost.BaseConfig(deterministic: false), cs, TimeSpan.FromSeconds(7)))
        {
            var c = hosted.System.Settings.Config;
            Assert.Equal(MartenPersistence.JournalPluginId, c.GetString("akka.persistence.journal.plugin"));
            Assert.Equal(7_000, (long)c.GetTimeSpan($"{MartenPersistence.JournalPluginId}.outage-limit").TotalMilliseconds);
            Assert.Equal("WARNING", c.GetString("akka.loglevel")); // SimHost.BaseConfig's, not Akka.Hosting's INFO
            // run handles SIGTERM itself (drains the round in flight): Akka's exit hook must not stop the system first.
            Assert.False(c.GetBoolean("akka.coordinated-shutdown.run-by-clr-shutdown-hook"));
            await hosted.StopAsync();
            Assert.True(hosted.System.WhenTerminated.IsCompleted);
        }
        await using (var inMemory = await HostedActorSystem.StartAsync("hosted-test", SimHost.BaseConfig(deterministic: true), null, TimeSpan.FromSeconds(7)))
        {
            var c = inMemory.System.Settings.Config;
            Assert.NotEqual(MartenPersistence.JournalPluginId, c.GetString("akka.persistence.journal.plugin"));
            Assert.Equal("ActorSim.Actors.VirtualClockScheduler, ActorSim.Actors", c.GetString("akka.scheduler.implementation"));
        }
    }
}
