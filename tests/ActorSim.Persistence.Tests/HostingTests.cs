using Akka.Actor;
using Akka.Hosting;
using Akka.Persistence;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace ActorSim.Persistence.Tests;

/// <summary>Akka.Hosting: WithMartenPersistence with a connection string or an NpgsqlDataSource.</summary>
public sealed class HostingTests(SchemaFixture schema) : IClassFixture<SchemaFixture>
{
    private sealed class Counter : ReceivePersistentActor
    {
        private int _count;
        public override string PersistenceId { get; }
        public Counter(string id)
        {
            PersistenceId = id;
            Recover<string>(_ => _count++);
            Command<string>(s => Persist(s, _ => { _count++; Sender.Tell(_count); }));
            Command<int>(_ => Sender.Tell(_count));
        }
    }

    private static async Task<int> RunHost(Action<AkkaConfigurationBuilder> configure, string id, string? persist)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddAkka("hosted", b => configure(b));
        using var host = builder.Build();
        await host.StartAsync();
        var sys = host.Services.GetRequiredService<ActorSystem>();
        var counter = sys.ActorOf(Props.Create(() => new Counter(id)));
        var result = persist is null ? await counter.Ask<int>(0, TimeSpan.FromSeconds(20)) : await counter.Ask<int>(persist, TimeSpan.FromSeconds(20));
        await host.StopAsync();
        return result;
    }

    [Fact]
    public async Task A_hosted_actor_system_persists_through_Marten_with_a_connection_string_and_recovers_with_a_data_source()
    {
        Assert.Equal(1, await RunHost(b => b.WithMartenPersistence(PostgresSchema.ConnectionString, schema.Name), "hosted-1", "a"));
        Assert.Equal(2, await RunHost(b => b.WithMartenPersistence(PostgresSchema.ConnectionString, schema.Name), "hosted-1", "b"));
        await using var ds = NpgsqlDataSource.Create(PostgresSchema.ConnectionString);
        Assert.Equal(2, await RunHost(b => b.WithMartenPersistence(ds, schema.Name), "hosted-1", null));
    }
}
