using ActorSim.Persistence;
using Akka.Actor;
using Akka.Configuration;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ActorSim.Host;

/// <summary>The simulation host's actor system under Akka.Hosting (architecture.md: "The host runs
/// actors under Akka.Hosting"): a generic host whose <c>AddAkka</c> builds the system from the
/// simulation's HOCON and, with a database, <see cref="MartenPersistenceHosting.WithMartenPersistence(AkkaConfigurationBuilder, string, string, int, TimeSpan?)"/>.
/// The host leaves Ctrl-C and SIGTERM to the command (no console lifetime): <c>run</c> drains the
/// round in flight on a signal and then stops the host, whose Akka service runs the system's
/// coordinated shutdown (the journal writes what is queued before it stops).</summary>
public sealed class HostedActorSystem : IAsyncDisposable
{
    private readonly IHost _host;
    private Task? _stopped;

    private HostedActorSystem(IHost host)
    {
        _host = host;
        System = host.Services.GetRequiredService<ActorSystem>();
    }

    public ActorSystem System { get; }

    public static async Task<HostedActorSystem> StartAsync(string name, Config config, string? connectionString, TimeSpan outageLimit)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddSingleton<IHostLifetime, CommandHandlesSignals>();
        builder.Services.AddAkka(name, b =>
        {
            // First, so its settings (log level WARNING, the journal, deterministic mode's dispatcher and
            // scheduler) win over Akka.Hosting's defaults.
            b.AddHocon(config, HoconAddMode.Prepend);
            // Akka's own hook on the process's exit off as well (Akka.Hosting asks for the system's
            // CoordinatedShutdown as it starts, which installs the hook): on SIGTERM it shut the system
            // down under the round in flight, where run drains that round and then stops the host.
            b.AddHocon("akka.coordinated-shutdown.run-by-clr-shutdown-hook = off", HoconAddMode.Prepend);
            // Akka's log on stderr, a database outage's errors on one line each (AkkaConsoleLogger).
            b.AddHocon(AkkaConsoleLogger.Hocon, HoconAddMode.Prepend);
            if (connectionString is not null) b.WithMartenPersistence(connectionString, outageLimit: outageLimit);
        });
        var host = builder.Build();
        await host.StartAsync();
        return new HostedActorSystem(host);
    }

    /// <summary>Stops the host: the actor system's coordinated shutdown, then the host's services. Once:
    /// disposing after it (run's normal end) waits for the same stop.</summary>
    public Task StopAsync() => _stopped ??= _host.StopAsync();

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _host.Dispose();
    }

    /// <summary>An <see cref="IHostLifetime"/> that registers no signal handler: the command's own
    /// drain on Ctrl-C / SIGTERM must not race the host's stop.</summary>
    private sealed class CommandHandlesSignals : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
