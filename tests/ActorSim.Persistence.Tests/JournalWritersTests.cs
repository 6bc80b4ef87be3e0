using ActorSim.Persistence;
using ActorSim.Persistence.Journal;
using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;

namespace ActorSim.Persistence.Tests;

/// <summary>The Marten journal with several writers committing at once (<c>parallelism</c>), on real
/// PostgreSQL: a stream's writes still commit in order, and a call naming several streams is written
/// whole, answered in its own order, or not at all.</summary>
public sealed class JournalWritersTests(SchemaFixture schema) : Akka.TestKit.Xunit2.TestKit(Config(schema.Name), "journal-writers"), IClassFixture<SchemaFixture>
{
    private static Akka.Configuration.Config Config(string schema) =>
        MartenPersistence.Config(PostgresSchema.ConnectionString, schema, parallelism: 4)
            .WithFallback(ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.stdout-loglevel = WARNING"));

    private IActorRef Journal => Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);

    private static AtomicWrite Write(string pid, long seq) =>
        new(new Persistent($"{pid}-{seq}", seq, pid, "", false, ActorRefs.NoSender, "w"));

    private List<string> Replay(string pid)
    {
        var probe = CreateTestProbe();
        Journal.Tell(new ReplayMessages(1, long.MaxValue, long.MaxValue, pid, probe.Ref));
        var payloads = new List<string>();
        while (probe.ReceiveOne(TimeSpan.FromSeconds(20)) is ReplayedMessage r) payloads.Add((string)r.Persistent.Payload);
        return payloads;
    }

    [Fact]
    public async Task Many_streams_written_at_once_each_commit_in_order()
    {
        // Every write is its own call, all sent before any is answered: a stream's later calls queue
        // behind its earlier ones on one writer. Were they spread over the writers, a later sequence
        // number could commit first and fail on the stream's expected version.
        var pids = Enumerable.Range(0, 8).Select(i => $"w{i}-{Guid.NewGuid():N}").ToArray();
        var probes = pids.Select(_ => CreateTestProbe()).ToArray();
        for (var seq = 1; seq <= 20; seq++)
            for (var p = 0; p < pids.Length; p++)
                Journal.Tell(new WriteMessages([Write(pids[p], seq)], probes[p].Ref, 1));
        for (var p = 0; p < pids.Length; p++)
            for (var seq = 1; seq <= 20; seq++)
            {
                probes[p].ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(30));
                probes[p].ExpectMsg<WriteMessageSuccess>(m => m.Persistent.SequenceNr == seq);
            }
        foreach (var pid in pids) Assert.Equal(Enumerable.Range(1, 20).Select(s => $"{pid}-{s}"), Replay(pid));
        var stats = await Journal.Ask<JournalStats>(GetJournalStats.Instance, TimeSpan.FromSeconds(10));
        Assert.Equal(4, stats.Writers);
        Assert.True(stats.Events >= 160, $"{stats.Events} events");
        Assert.InRange(stats.Busy, 0.0, 1.0);
    }

    [Fact]
    public void A_call_naming_two_streams_writes_both_and_answers_in_its_order()
    {
        var a = $"a-{Guid.NewGuid():N}";
        var b = $"b-{Guid.NewGuid():N}";
        var probe = CreateTestProbe();
        Journal.Tell(new WriteMessages([Write(a, 1), Write(b, 1), Write(a, 2)], probe.Ref, 1));
        probe.ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        probe.ExpectMsg<WriteMessageSuccess>(m => m.Persistent.PersistenceId == a && m.Persistent.SequenceNr == 1);
        probe.ExpectMsg<WriteMessageSuccess>(m => m.Persistent.PersistenceId == b && m.Persistent.SequenceNr == 1);
        probe.ExpectMsg<WriteMessageSuccess>(m => m.Persistent.PersistenceId == a && m.Persistent.SequenceNr == 2);
        Assert.Equal([$"{a}-1", $"{a}-2"], Replay(a));
        Assert.Equal([$"{b}-1"], Replay(b));
    }

    [Fact]
    public void A_stale_write_in_a_two_stream_call_fails_the_call_and_writes_none_of_it()
    {
        var a = $"a-{Guid.NewGuid():N}";
        var b = $"b-{Guid.NewGuid():N}";
        var probe = CreateTestProbe();
        Journal.Tell(new WriteMessages([Write(a, 1)], probe.Ref, 1));
        probe.ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        probe.ExpectMsg<WriteMessageSuccess>();
        // a-1 again is stale: the call fails (Akka's contract for a write failure) and b-1, in the same
        // call, is not written either.
        Journal.Tell(new WriteMessages([Write(b, 1), Write(a, 1)], probe.Ref, 1));
        probe.ExpectMsg<WriteMessagesFailed>(TimeSpan.FromSeconds(20));
        Assert.Equal([$"{a}-1"], Replay(a));
        Assert.Empty(Replay(b));
    }
}
