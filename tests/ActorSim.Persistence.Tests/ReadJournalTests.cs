using ActorSim.Persistence.Query;
using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.Query;
using Akka.Streams;
using Akka.Streams.Dsl;

namespace ActorSim.Persistence.Tests;

/// <summary>Akka.Persistence.Query on Marten: by persistence id (current and live) and all events in
/// global order with an exclusive offset.</summary>
public sealed class ReadJournalTests : Akka.TestKit.Xunit2.TestKit, IClassFixture<SchemaFixture>
{
    private readonly MartenReadJournal _read;
    private readonly IActorRef _journal;
    private readonly IMaterializer _mat;

    public ReadJournalTests(SchemaFixture schema) : base(PostgresSchema.AkkaConfig(schema.Name), "read-journal")
    {
        _read = PersistenceQuery.Get(Sys).ReadJournalFor<MartenReadJournal>(MartenReadJournal.Identifier);
        _journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        _mat = Sys.Materializer();
    }

    private void Write(string pid, int from, int to)
    {
        var writes = Enumerable.Range(from, to - from + 1)
            .Select(i => new AtomicWrite(new Persistent($"{pid}-{i}", i, pid, "", false, ActorRefs.NoSender, "w"))).ToArray();
        Journal().Tell(new WriteMessages(writes, TestActor, 1));
        ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        ReceiveN(writes.Length);
    }

    private IActorRef Journal() => _journal;

    [Fact]
    public async Task CurrentEventsByPersistenceId_returns_the_stored_events_in_order_within_bounds()
    {
        Write("q1", 1, 5);
        var all = await _read.CurrentEventsByPersistenceId("q1", 0, long.MaxValue).RunWith(Sink.Seq<EventEnvelope>(), _mat);
        Assert.Equal(["q1-1", "q1-2", "q1-3", "q1-4", "q1-5"], all.Select(e => (string)e.Event));
        var some = await _read.CurrentEventsByPersistenceId("q1", 2, 4).RunWith(Sink.Seq<EventEnvelope>(), _mat);
        Assert.Equal([2L, 3, 4], some.Select(e => e.SequenceNr));
        Assert.Empty(await _read.CurrentEventsByPersistenceId("nobody", 0, long.MaxValue).RunWith(Sink.Seq<EventEnvelope>(), _mat));
    }

    [Fact]
    public async Task EventsByPersistenceId_keeps_delivering_events_written_later()
    {
        Write("q2", 1, 2);
        var task = _read.EventsByPersistenceId("q2", 0, long.MaxValue).Take(4).RunWith(Sink.Seq<EventEnvelope>(), _mat);
        await Task.Delay(300);
        Write("q2", 3, 4);
        var got = await task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal([1L, 2, 3, 4], got.Select(e => e.SequenceNr));
    }

    [Fact]
    public async Task CurrentAllEvents_starts_after_the_offset_and_AllEvents_goes_on_live()
    {
        Write("q3", 1, 3);
        var everything = await _read.CurrentAllEvents(NoOffset.Instance).RunWith(Sink.Seq<EventEnvelope>(), _mat);
        var mine = everything.Where(e => e.PersistenceId == "q3").ToList();
        Assert.Equal(3, mine.Count);
        var offsets = everything.Select(e => ((Sequence)e.Offset).Value).ToList();
        Assert.Equal(offsets.Order(), offsets);
        var afterFirst = await _read.CurrentAllEvents(mine[0].Offset).RunWith(Sink.Seq<EventEnvelope>(), _mat);
        Assert.DoesNotContain(afterFirst, e => e.Offset.Equals(mine[0].Offset)); // exclusive
        Assert.Contains(afterFirst, e => e.Offset.Equals(mine[1].Offset));

        var live = _read.AllEvents(mine[2].Offset).Take(2).RunWith(Sink.Seq<EventEnvelope>(), _mat);
        Write("q3", 4, 5);
        var got = await live.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(["q3-4", "q3-5"], got.Select(e => (string)e.Event));
    }
}
