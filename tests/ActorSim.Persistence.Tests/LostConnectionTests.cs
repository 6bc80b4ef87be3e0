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

/// <summary>A recovery — the snapshot store's load, the journal's replay — rides out an outage as a write
/// does (it failed at once, and its actor stopped with nothing to tell <c>run</c>), and fails only past
/// the outage limit, saying so.</summary>
public sealed class RecoveryOutageTests(SchemaFixture schema) : IClassFixture<SchemaFixture>
{
    private sealed record Setup(CuttableProxy Proxy, int RealPort, ActorSystem System, IActorRef Journal, IActorRef Snapshots, Akka.TestKit.Xunit2.TestKit Kit, Akka.TestKit.TestProbe News);

    /// <summary>An actor system on the database through a proxy, with two events and a snapshot at 1 of
    /// <paramref name="pid"/> written before the cut.</summary>
    private Setup WrittenThroughProxy(string pid, TimeSpan outageLimit)
    {
        var real = new NpgsqlConnectionStringBuilder(PostgresSchema.ConnectionString);
        var proxy = new CuttableProxy(real.Port);
        var viaProxy = new NpgsqlConnectionStringBuilder(PostgresSchema.ConnectionString) { Port = proxy.Port, Timeout = 2, CommandTimeout = 5 }.ConnectionString;
        var sys = ActorSystem.Create("recovery-outage", PostgresSchema.AkkaConfig(schema.Name, viaProxy, outageLimit));
        var persistence = Akka.Persistence.Persistence.Instance.Apply(sys);
        var (journal, snapshots) = (persistence.JournalFor(null), persistence.SnapshotStoreFor(null));
        var kit = new Akka.TestKit.Xunit2.TestKit(sys);
        var news = kit.CreateTestProbe();
        foreach (var t in new[] { typeof(Journal.JournalOutage), typeof(Journal.JournalAvailable), typeof(Journal.JournalUnavailable) })
            sys.EventStream.Subscribe(news.Ref, t);
        journal.Tell(new WriteMessages([new AtomicWrite(new Persistent("e-1", 1, pid, "", false, ActorRefs.NoSender, "w")),
            new AtomicWrite(new Persistent("e-2", 2, pid, "", false, ActorRefs.NoSender, "w"))], kit.TestActor, 1));
        kit.ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(30));
        kit.ExpectMsg<WriteMessageSuccess>();
        kit.ExpectMsg<WriteMessageSuccess>();
        snapshots.Tell(new SaveSnapshot(new SnapshotMetadata(pid, 1, DateTime.UtcNow), "state-at-1"), kit.TestActor);
        kit.ExpectMsg<SaveSnapshotSuccess>(TimeSpan.FromSeconds(30));
        return new Setup(proxy, real.Port, sys, journal, snapshots, kit, news);
    }

    [Fact]
    public async Task A_recovery_in_a_short_outage_waits_and_completes_once_the_database_is_back()
    {
        var s = WrittenThroughProxy("recovery-outage-pid", TimeSpan.FromSeconds(60));
        var port = s.Proxy.Port;
        s.Proxy.Cut();                                                  // the database goes away
        var loader = s.Kit.CreateTestProbe();
        var replayer = s.Kit.CreateTestProbe();
        s.Snapshots.Tell(new LoadSnapshot("recovery-outage-pid", SnapshotSelectionCriteria.Latest, long.MaxValue), loader.Ref);
        s.Journal.Tell(new ReplayMessages(2, long.MaxValue, long.MaxValue, "recovery-outage-pid", replayer.Ref));
        s.News.ExpectMsg<Journal.JournalOutage>(TimeSpan.FromSeconds(30));
        loader.ExpectNoMsg(TimeSpan.FromSeconds(3));                   // no failure: they wait
        replayer.ExpectNoMsg(TimeSpan.Zero);
        using var back = CuttableProxy.OnPort(port, s.RealPort);        // ... and it comes back
        var loaded = loader.ExpectMsg<LoadSnapshotResult>(TimeSpan.FromSeconds(30));
        Assert.Equal((1L, (object)"state-at-1"), (loaded.Snapshot.Metadata.SequenceNr, loaded.Snapshot.Snapshot));
        Assert.Equal("e-2", replayer.ExpectMsg<ReplayedMessage>(TimeSpan.FromSeconds(30)).Persistent.Payload);
        Assert.Equal(2L, replayer.ExpectMsg<RecoverySuccess>().HighestSequenceNr);
        s.News.FishForMessage(m => m is Journal.JournalAvailable, TimeSpan.FromSeconds(5));
        s.Proxy.Dispose();
        await s.System.Terminate();
    }

    [Fact]
    public async Task A_recovery_in_an_outage_past_the_limit_fails_and_the_database_is_said_unavailable()
    {
        var s = WrittenThroughProxy("recovery-lost-pid", TimeSpan.FromSeconds(1));
        s.Proxy.Cut();
        var loader = s.Kit.CreateTestProbe();
        var replayer = s.Kit.CreateTestProbe();
        s.Snapshots.Tell(new LoadSnapshot("recovery-lost-pid", SnapshotSelectionCriteria.Latest, long.MaxValue), loader.Ref);
        s.Journal.Tell(new ReplayMessages(1, long.MaxValue, long.MaxValue, "recovery-lost-pid", replayer.Ref));
        s.News.ExpectMsg<Journal.JournalOutage>(TimeSpan.FromSeconds(30)); // ridden out first
        Assert.True(Journal.Outages.IsTransient(loader.ExpectMsg<LoadSnapshotFailed>(TimeSpan.FromSeconds(30)).Cause));
        Assert.True(Journal.Outages.IsTransient(replayer.ExpectMsg<ReplayMessagesFailure>(TimeSpan.FromSeconds(30)).Cause));
        s.News.FishForMessage(m => m is Journal.JournalUnavailable, TimeSpan.FromSeconds(5));
        s.Proxy.Dispose();
        await s.System.Terminate();
    }

    [Fact]
    public async Task A_replay_whose_read_of_the_events_fails_after_the_highest_was_read_is_tried_again()
    {
        // Akka reads a stream's highest sequence number, then its events. Here the second read fails and the
        // first does not: mt_events is locked by another session, so the read of the events times out
        // (a command timeout of 1 s, an NpgsqlException as a lost connection is) until the lock goes.
        var cs = new NpgsqlConnectionStringBuilder(PostgresSchema.ConnectionString) { CommandTimeout = 1 }.ConnectionString;
        using var sys = ActorSystem.Create("replay-retried", PostgresSchema.AkkaConfig(schema.Name, cs, TimeSpan.FromSeconds(60)));
        var journal = Akka.Persistence.Persistence.Instance.Apply(sys).JournalFor(null);
        var kit = new Akka.TestKit.Xunit2.TestKit(sys);
        var news = kit.CreateTestProbe();
        sys.EventStream.Subscribe(news.Ref, typeof(Journal.JournalOutage));
        sys.EventStream.Subscribe(news.Ref, typeof(Journal.JournalAvailable));
        const string pid = "replay-retried-pid";
        journal.Tell(new WriteMessages([new AtomicWrite(new Persistent("e-1", 1, pid, "", false, ActorRefs.NoSender, "w")),
            new AtomicWrite(new Persistent("e-2", 2, pid, "", false, ActorRefs.NoSender, "w"))], kit.TestActor, 1));
        kit.ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(30));

        await using var locker = new NpgsqlConnection(PostgresSchema.ConnectionString);
        await locker.OpenAsync();
        await using var tx = await locker.BeginTransactionAsync();
        await using (var lockEvents = new NpgsqlCommand($"lock table {schema.Name}.mt_events in access exclusive mode", locker, tx))
            await lockEvents.ExecuteNonQueryAsync();
        var replayer = kit.CreateTestProbe();
        journal.Tell(new ReplayMessages(1, long.MaxValue, long.MaxValue, pid, replayer.Ref));
        news.ExpectMsg<Journal.JournalOutage>(TimeSpan.FromSeconds(30));
        replayer.ExpectNoMsg(TimeSpan.FromSeconds(2));                  // no failure: it is tried again
        await tx.RollbackAsync();
        Assert.Equal("e-1", replayer.ExpectMsg<ReplayedMessage>(TimeSpan.FromSeconds(30)).Persistent.Payload);
        Assert.Equal("e-2", replayer.ExpectMsg<ReplayedMessage>().Persistent.Payload);
        Assert.Equal(2L, replayer.ExpectMsg<RecoverySuccess>().HighestSequenceNr);
        news.FishForMessage(m => m is Journal.JournalAvailable, TimeSpan.FromSeconds(5));
        await sys.Terminate();
    }

    [Fact]
    public void Akka_times_out_neither_a_write_nor_a_recovery_before_the_outage_limit()
    {
        // Akka's own timeouts around the plugins' calls: the circuit breakers' (10 s and 20 s by default)
        // and a recovery's wait for the snapshot and for each replayed event (30 s by default).
        var limit = TimeSpan.FromMinutes(5);
        var config = MartenPersistence.Config(PostgresSchema.ConnectionString, schema.Name, outageLimit: limit);
        foreach (var key in new[]
                 {
                     "akka.persistence.journal.marten.circuit-breaker.call-timeout",
                     "akka.persistence.journal.marten.recovery-event-timeout",
                     "akka.persistence.snapshot-store.marten.circuit-breaker.call-timeout",
                 })
            Assert.True(config.GetTimeSpan(key) > limit, $"{key} = {config.GetTimeSpan(key)}, not past the outage limit {limit}");
        Assert.Equal(limit, config.GetTimeSpan("akka.persistence.snapshot-store.marten.outage-limit"));
    }
}
