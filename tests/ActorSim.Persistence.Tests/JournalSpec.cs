using System.Collections.Immutable;
using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;
using Akka.TestKit;

namespace ActorSim.Persistence.Tests;

/// <summary>The Akka.Persistence journal contract, stated once (after Akka.Persistence.TCK's
/// JournalSpec, which is not served here). A plugin is tested by a class that inherits it.
/// Every test starts with a-1..a-5 written for <see cref="Pid"/>.</summary>
public abstract class JournalSpec : Akka.TestKit.Xunit2.TestKit
{
    protected readonly string Pid;
    protected readonly string WriterGuid = Guid.NewGuid().ToString();
    protected readonly IActorRef Journal;
    private readonly TestProbe _sender;
    private int _instanceId = 1;

    protected JournalSpec(Config config, string name) : base(config, name)
    {
        Pid = $"p-{Guid.NewGuid():N}";
        Journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        _sender = CreateTestProbe();
        WriteMessages(1, 5, Pid, _sender.Ref, WriterGuid);
    }

    protected static AtomicWrite Write(string pid, long seq, object payload, string writerGuid, IActorRef? sender = null) =>
        new(new Persistent(payload, seq, pid, "", false, sender ?? ActorRefs.NoSender, writerGuid));

    protected void WriteMessages(int from, int to, string pid, IActorRef sender, string writerGuid)
    {
        var probe = CreateTestProbe();
        var writes = Enumerable.Range(from, to - from + 1).Select(i => Write(pid, i, $"a-{i}", writerGuid, sender)).ToArray();
        Journal.Tell(new WriteMessages(writes, probe.Ref, _instanceId));
        probe.ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        for (var i = from; i <= to; i++)
        {
            var n = i;
            probe.ExpectMsg<WriteMessageSuccess>(m => m.Persistent.Payload.Equals($"a-{n}") && m.Persistent.SequenceNr == n && m.Persistent.PersistenceId == pid);
        }
    }

    protected (List<IPersistentRepresentation> Replayed, long Highest) Replay(long from, long to, long max, string? pid = null)
    {
        var probe = CreateTestProbe();
        Journal.Tell(new ReplayMessages(from, to, max, pid ?? Pid, probe.Ref));
        var replayed = new List<IPersistentRepresentation>();
        while (true)
        {
            var m = probe.ReceiveOne(TimeSpan.FromSeconds(20));
            switch (m)
            {
                case ReplayedMessage r: replayed.Add(r.Persistent); break;
                case RecoverySuccess s: return (replayed, s.HighestSequenceNr);
                default: throw new Xunit.Sdk.XunitException($"unexpected {m}");
            }
        }
    }

    protected void Delete(long to, string? pid = null)
    {
        var probe = CreateTestProbe();
        Journal.Tell(new DeleteMessagesTo(pid ?? Pid, to, probe.Ref));
        probe.ExpectMsg<DeleteMessagesSuccess>(TimeSpan.FromSeconds(20));
    }

    private static long[] Seqs(IEnumerable<IPersistentRepresentation> r) => r.Select(p => p.SequenceNr).ToArray();

    [Fact] public void Journal_should_replay_all_messages() => Assert.Equal([1L, 2, 3, 4, 5], Seqs(Replay(1, long.MaxValue, long.MaxValue).Replayed));
    [Fact] public void Journal_should_replay_messages_using_a_lower_sequence_number_bound() => Assert.Equal([3L, 4, 5], Seqs(Replay(3, long.MaxValue, long.MaxValue).Replayed));
    [Fact] public void Journal_should_replay_messages_using_an_upper_sequence_number_bound() => Assert.Equal([1L, 2, 3], Seqs(Replay(1, 3, long.MaxValue).Replayed));
    [Fact] public void Journal_should_replay_messages_using_a_count_limit() => Assert.Equal([1L, 2], Seqs(Replay(1, long.MaxValue, 2).Replayed));
    [Fact] public void Journal_should_replay_messages_using_a_lower_and_upper_bound_and_a_count_limit() => Assert.Equal([2L, 3], Seqs(Replay(2, 5, 2).Replayed));
    [Fact] public void Journal_should_replay_a_single_message_if_lower_equals_upper() => Assert.Equal([2L], Seqs(Replay(2, 2, long.MaxValue).Replayed));

    [Fact]
    public void Journal_should_not_replay_messages_if_count_limit_equals_zero()
    {
        var (r, highest) = Replay(1, long.MaxValue, 0);
        Assert.Empty(r);
        Assert.Equal(5, highest);
    }

    [Fact] public void Journal_should_not_replay_messages_if_lower_sequence_number_bound_is_greater_than_upper() => Assert.Empty(Replay(3, 2, long.MaxValue).Replayed);

    [Fact]
    public void Journal_should_not_replay_messages_if_the_persistent_actor_has_not_yet_written_messages()
    {
        var (r, highest) = Replay(0, long.MaxValue, long.MaxValue, "unknown-" + Pid);
        Assert.Empty(r);
        Assert.Equal(0, highest);
    }

    [Fact]
    public void Journal_should_replay_payload_writer_guid_and_persistence_id()
    {
        var first = Replay(1, 1, 1).Replayed.Single();
        Assert.Equal(("a-1", WriterGuid, Pid, false), ((string)first.Payload, first.WriterGuid, first.PersistenceId, first.IsDeleted));
    }

    [Fact]
    public void Journal_should_not_replay_permanently_deleted_messages_on_range_deletion()
    {
        Delete(3);
        Assert.Equal([4L, 5], Seqs(Replay(1, long.MaxValue, long.MaxValue).Replayed));
    }

    [Fact]
    public void Journal_should_not_reset_HighestSequenceNr_after_message_deletion()
    {
        Delete(3);
        Assert.Equal(5, Replay(0, long.MaxValue, long.MaxValue).Highest);
    }

    [Fact]
    public void Journal_should_not_reset_HighestSequenceNr_after_journal_cleanup()
    {
        Delete(long.MaxValue);
        var (r, highest) = Replay(0, long.MaxValue, long.MaxValue);
        Assert.Empty(r);
        Assert.Equal(5, highest);
    }

    [Fact]
    public void Journal_should_write_an_AtomicWrite_of_several_events_all_together()
    {
        var probe = CreateTestProbe();
        var batch = new AtomicWrite(ImmutableList.Create<IPersistentRepresentation>(
            new Persistent("a-6", 6, Pid, "", false, ActorRefs.NoSender, WriterGuid),
            new Persistent("a-7", 7, Pid, "", false, ActorRefs.NoSender, WriterGuid),
            new Persistent("a-8", 8, Pid, "", false, ActorRefs.NoSender, WriterGuid)));
        Journal.Tell(new WriteMessages([batch], probe.Ref, 1));
        probe.ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        probe.ReceiveN(3);
        Assert.Equal(["a-6", "a-7", "a-8"], Replay(6, long.MaxValue, long.MaxValue).Replayed.Select(p => (string)p.Payload));
    }

    [Fact]
    public void Journal_should_answer_a_call_in_its_order_with_each_events_sender()
    {
        var probe = CreateTestProbe();
        var a = CreateTestProbe();
        var b = CreateTestProbe();
        Journal.Tell(new WriteMessages([Write(Pid, 6, "a-6", WriterGuid, a.Ref), Write(Pid, 7, "a-7", WriterGuid, b.Ref)], probe.Ref, 7));
        probe.ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        probe.ExpectMsg<WriteMessageSuccess>(m => m.Persistent.SequenceNr == 6 && m.ActorInstanceId == 7);
        Assert.Equal(a.Ref, probe.LastSender);
        probe.ExpectMsg<WriteMessageSuccess>(m => m.Persistent.SequenceNr == 7);
        Assert.Equal(b.Ref, probe.LastSender);
        // Replayed without the sender it was written with.
        Assert.All(Replay(6, 7, long.MaxValue).Replayed, p => Assert.Equal(ActorRefs.NoSender, p.Sender));
    }

    /// <summary>Persists, defers and persists again in one command: one call to the journal, whose
    /// answers run the handlers in that order, each with the command's sender.</summary>
    private sealed class PersistDeferPersist(string persistenceId) : UntypedPersistentActor
    {
        public override string PersistenceId { get; } = persistenceId;
        protected override void OnRecover(object message) { }
        protected override void OnCommand(object message)
        {
            var from = Sender;
            PersistAsync("e-1", e => from.Tell((e, Sender)));
            DeferAsync("deferred", d => from.Tell((d, Sender)));
            PersistAsync("e-2", e => from.Tell((e, Sender)));
        }
    }

    [Fact]
    public void Journal_should_loop_a_deferred_message_back_between_the_events_around_it()
    {
        var actor = Sys.ActorOf(Props.Create(() => new PersistDeferPersist($"d-{Guid.NewGuid():N}")));
        actor.Tell("go", TestActor);
        foreach (var expected in new[] { "e-1", "deferred", "e-2" })
            Assert.Equal((expected, TestActor), ExpectMsg<(string, IActorRef)>(TimeSpan.FromSeconds(20)));
    }

    /// <summary>Whether the journal serializes what it writes (a database's does; the in-memory one keeps
    /// the objects, so nothing is refused for want of a serializer).</summary>
    protected virtual bool Serializes => true;

    [Fact]
    public void Journal_should_reject_a_non_serializable_event_and_write_the_others()
    {
        var probe = CreateTestProbe();
        Journal.Tell(new WriteMessages([Write(Pid, 6, "a-6", WriterGuid), Write(Pid, 7, new NotSerializable(), WriterGuid), Write(Pid, 8, "a-8", WriterGuid)], probe.Ref, 1));
        probe.ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        probe.ExpectMsg<WriteMessageSuccess>(m => m.Persistent.SequenceNr == 6);
        if (Serializes) probe.ExpectMsg<WriteMessageRejected>(m => m.Persistent.SequenceNr == 7);
        else probe.ExpectMsg<WriteMessageSuccess>(m => m.Persistent.SequenceNr == 7 && m.Persistent.Payload is NotSerializable);
        probe.ExpectMsg<WriteMessageSuccess>(m => m.Persistent.SequenceNr == 8);
        var (r, highest) = Replay(6, long.MaxValue, long.MaxValue);
        Assert.Equal(Serializes ? [6L, 8] : [6L, 7, 8], Seqs(r));
        Assert.Equal(8, highest);
    }

    [Fact]
    public void Journal_should_fail_the_second_of_two_writers_on_one_persistence_id_and_keep_the_first()
    {
        var p1 = CreateTestProbe();
        var p2 = CreateTestProbe();
        Journal.Tell(new WriteMessages([Write(Pid, 6, "first", "w1")], p1.Ref, 1));
        p1.ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        Journal.Tell(new WriteMessages([Write(Pid, 6, "second", "w2")], p2.Ref, 2));
        p2.ExpectMsg<WriteMessagesFailed>(TimeSpan.FromSeconds(20));
        p2.ExpectMsg<WriteMessageFailure>();
        var six = Replay(6, 6, 1).Replayed.Single();
        Assert.Equal(("first", "w1"), ((string)six.Payload, six.WriterGuid));
        Assert.Equal(6, Replay(0, long.MaxValue, long.MaxValue).Highest);
    }

    [Fact]
    public void Journal_should_keep_writing_for_other_actors_while_one_writer_conflicts() =>
        BadWriteBesideAGoodOne(3, "stale");

    [Fact]
    public void A_write_past_the_streams_end_fails_alone_and_writes_nothing()
    {
        // seq 8 while the stream is at 5: a gap.
        BadWriteBesideAGoodOne(8, "gap");
        var (replayed, highest) = Replay(1, long.MaxValue, long.MaxValue);
        Assert.Equal([1L, 2, 3, 4, 5], replayed.Select(p => p.SequenceNr));
        Assert.Equal(5, highest);
    }

    /// <summary>A write of <see cref="Pid"/> at <paramref name="seq"/> that must fail, and a good one of
    /// another actor queued right after it: merged into one commit, the bad one must not fail the good one.</summary>
    protected void BadWriteBesideAGoodOne(long seq, string payload)
    {
        var other = $"q-{Guid.NewGuid():N}";
        var ok = CreateTestProbe();
        var bad = CreateTestProbe();
        Journal.Tell(new WriteMessages([Write(Pid, seq, payload, "w9")], bad.Ref, 3));
        Journal.Tell(new WriteMessages([Write(other, 1, "b-1", "w1")], ok.Ref, 4));
        bad.ExpectMsg<WriteMessagesFailed>(TimeSpan.FromSeconds(20));
        ok.ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        Assert.Equal(["b-1"], Replay(1, long.MaxValue, long.MaxValue, other).Replayed.Select(p => (string)p.Payload));
    }

    /// <summary>Newtonsoft (Akka's default serializer) fails on a property that throws.</summary>
    public sealed class NotSerializable
    {
        public string Value => throw new InvalidOperationException("cannot be serialized");
    }
}

/// <summary>The journal contract against the Marten journal on real PostgreSQL, in a schema of its own.</summary>
public sealed class MartenJournalSpec(SchemaFixture schema)
    : JournalSpec(PostgresSchema.AkkaConfig(schema.Name), "marten-journal-spec"), IClassFixture<SchemaFixture>
{
    [Fact]
    public async Task The_journal_reports_its_writers_commits()
    {
        // a-1..a-5 went in one write call, one commit, when the test started.
        var first = await Journal.Ask<ActorSim.Persistence.Journal.JournalStats>(ActorSim.Persistence.Journal.GetJournalStats.Instance, TimeSpan.FromSeconds(10));
        Assert.Equal((1L, 1L, 5L), (first.Commits, first.Calls, first.Events));
        Assert.True(first.InCommits > TimeSpan.Zero && first.MeanCommit == first.InCommits);
        WriteMessages(6, 8, Pid, CreateTestProbe().Ref, WriterGuid);
        var second = await Journal.Ask<ActorSim.Persistence.Journal.JournalStats>(ActorSim.Persistence.Journal.GetJournalStats.Instance, TimeSpan.FromSeconds(10));
        Assert.Equal((2L, 2L, 8L, 4.0), (second.Commits, second.Calls, second.Events, second.EventsPerCommit));
        Assert.InRange(second.Busy, 0.0, 1.0);
        // The writer's session skips the foreign-key check wherever the role may (scripts/pg.sh grants it).
        await using var conn = new Npgsql.NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        await using var may = new Npgsql.NpgsqlCommand("select has_parameter_privilege('session_replication_role', 'SET')", conn);
        Assert.Equal((bool)(await may.ExecuteScalarAsync())!, second.SkipsForeignKeyChecks);
    }
}

/// <summary>The journal contract against the Marten journal in deterministic mode
/// (<c>SimHost.BaseConfig(deterministic: true)</c>: one dispatcher thread, <c>actorsim.deterministic</c>
/// on), where each call is committed inside the journal's turn (<c>InTurn</c>).</summary>
public sealed class DeterministicMartenJournalSpec(SchemaFixture schema)
    : JournalSpec(PostgresSchema.AkkaConfig(schema.Name).WithFallback(ActorSim.Actors.SimHost.BaseConfig(deterministic: true)), "deterministic-marten-journal-spec"),
        IClassFixture<SchemaFixture>
{
    [Fact]
    public async Task A_write_is_committed_before_the_journal_takes_its_next_message()
    {
        var probe = CreateTestProbe();
        // Told, not awaited: the question right behind it in the journal's mailbox already sees the
        // commit (the writer loop of the default mode would take ~1 ms to make it).
        Journal.Tell(new WriteMessages([Write(Pid, 6, "a-6", WriterGuid), Write(Pid, 7, "a-7", WriterGuid)], probe.Ref, 1));
        var stats = await Journal.Ask<ActorSim.Persistence.Journal.JournalStats>(ActorSim.Persistence.Journal.GetJournalStats.Instance, TimeSpan.FromSeconds(10));
        Assert.Equal((2L, 7L), (stats.Commits, stats.Events)); // a-1..a-5's call, then this one
        probe.ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        Assert.Equal([1L, 2, 3, 4, 5, 6, 7], Replay(1, long.MaxValue, long.MaxValue).Replayed.Select(p => p.SequenceNr));
    }
}

/// <summary>The journal contract against the journal of runs without a database.</summary>
public sealed class InMemoryJournalSpec() : JournalSpec(ActorSim.Actors.InMemoryJournal.Config, "in-memory-journal-spec")
{
    protected override bool Serializes => false;

    [Fact]
    public void A_call_with_a_write_that_does_not_continue_its_stream_writes_nothing()
    {
        var probe = CreateTestProbe();
        Journal.Tell(new WriteMessages([Write(Pid, 6, "a-6", WriterGuid), Write(Pid, 8, "a-8", WriterGuid)], probe.Ref, 1));
        probe.ExpectMsg<WriteMessagesFailed>(TimeSpan.FromSeconds(20));
        var (replayed, highest) = Replay(1, long.MaxValue, long.MaxValue);
        Assert.Equal([1L, 2, 3, 4, 5], replayed.Select(p => p.SequenceNr));
        Assert.Equal(5, highest);
    }

    [Fact]
    public void Deleting_again_and_past_the_end_keeps_the_highest_sequence_number_and_the_rest()
    {
        WriteMessages(6, 2000, Pid, CreateTestProbe().Ref, WriterGuid);
        Delete(1500); // most of the list
        Delete(1200); // already gone
        Assert.Equal([1501L, 1502], Replay(1, 1502, long.MaxValue).Replayed.Select(p => p.SequenceNr));
        Assert.Equal(500, Replay(0, long.MaxValue, long.MaxValue).Replayed.Count);
        WriteMessages(2001, 2001, Pid, CreateTestProbe().Ref, WriterGuid);
        Delete(long.MaxValue);
        var (replayed, highest) = Replay(0, long.MaxValue, long.MaxValue);
        Assert.Empty(replayed);
        Assert.Equal(2001, highest);
    }
}
