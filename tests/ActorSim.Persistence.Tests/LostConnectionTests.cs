using Akka.Actor;
using Akka.Persistence;
using ActorSim.Tests;
using Npgsql;

namespace ActorSim.Persistence.Tests;

public sealed class LostConnectionTests(SchemaFixture schema) : IClassFixture<SchemaFixture>
{
    [Fact]
    public async Task A_connection_lost_for_longer_than_the_outage_limit_fails_the_whole_write_call()
    {
        var real = new NpgsqlConnectionStringBuilder(PostgresSchema.ConnectionString);
        using var proxy = new CuttableProxy(real.Port);
        var viaProxy = new NpgsqlConnectionStringBuilder(PostgresSchema.ConnectionString) { Port = proxy.Port, Pooling = true, Timeout = 3, CommandTimeout = 5 }.ConnectionString;
        using var sys = ActorSystem.Create("lost", PostgresSchema.AkkaConfig(schema.Name, viaProxy, outageLimit: TimeSpan.FromSeconds(1)));
        var journal = Akka.Persistence.Persistence.Instance.Apply(sys).JournalFor(null);
        var probe = new Akka.TestKit.Xunit2.TestKit(sys);
        var outage = probe.CreateTestProbe();
        sys.EventStream.Subscribe(outage.Ref, typeof(Journal.JournalOutage));
        sys.EventStream.Subscribe(outage.Ref, typeof(Journal.JournalUnavailable));

        AtomicWrite W(long seq) => new(new Persistent($"e-{seq}", seq, "lost-pid", "", false, ActorRefs.NoSender, "w"));
        journal.Tell(new WriteMessages([W(1)], probe.TestActor, 1));
        probe.ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(30));
        probe.ExpectMsg<WriteMessageSuccess>();

        proxy.Cut();
        journal.Tell(new WriteMessages([W(2), W(3)], probe.TestActor, 1));
        outage.ExpectMsg<Journal.JournalOutage>(TimeSpan.FromSeconds(30)); // it rides the outage out first
        var failed = probe.ExpectMsg<WriteMessagesFailed>(TimeSpan.FromSeconds(30));
        outage.ExpectMsg<Journal.JournalUnavailable>(TimeSpan.FromSeconds(5));
        Assert.Equal(2, failed.WriteCount);
        probe.ExpectMsg<WriteMessageFailure>(m => m.Persistent.SequenceNr == 2);
        probe.ExpectMsg<WriteMessageFailure>(m => m.Persistent.SequenceNr == 3);

        // Nothing of the failed call was written.
        await using var conn = new NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"select count(*) from {schema.Name}.mt_events where stream_id = 'lost-pid'", conn);
        Assert.Equal(1L, (long)(await cmd.ExecuteScalarAsync())!);
        await sys.Terminate();
    }
}

public sealed class OutageTests(SchemaFixture schema) : IClassFixture<SchemaFixture>
{
    [Fact]
    public async Task A_short_outage_is_ridden_out_and_the_write_lands_once_the_database_is_back()
    {
        var real = new NpgsqlConnectionStringBuilder(PostgresSchema.ConnectionString);
        var proxy = new CuttableProxy(real.Port);
        var port = proxy.Port;
        var viaProxy = new NpgsqlConnectionStringBuilder(PostgresSchema.ConnectionString) { Port = port, Timeout = 2, CommandTimeout = 5 }.ConnectionString;
        using var sys = ActorSystem.Create("outage", PostgresSchema.AkkaConfig(schema.Name, viaProxy, outageLimit: TimeSpan.FromSeconds(60)));
        var journal = Akka.Persistence.Persistence.Instance.Apply(sys).JournalFor(null);
        var probe = new Akka.TestKit.Xunit2.TestKit(sys);
        AtomicWrite W(long seq) => new(new Persistent($"e-{seq}", seq, "outage-pid", "", false, ActorRefs.NoSender, "w"));
        journal.Tell(new WriteMessages([W(1)], probe.TestActor, 1));
        probe.ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(30));
        probe.ExpectMsg<WriteMessageSuccess>();

        proxy.Cut();                                        // the database goes away
        journal.Tell(new WriteMessages([W(2)], probe.TestActor, 1));
        probe.ExpectNoMsg(TimeSpan.FromSeconds(3));         // no failure: the journal waits
        using var back = CuttableProxy.OnPort(port, real.Port); // ... and comes back on the same address
        probe.ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(30));
        probe.ExpectMsg<WriteMessageSuccess>(m => m.Persistent.SequenceNr == 2);
        await sys.Terminate();
    }
}
