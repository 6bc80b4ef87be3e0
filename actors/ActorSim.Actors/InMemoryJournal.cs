using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;
using Akka.Persistence.Journal;

namespace ActorSim.Actors;

/// <summary>The journal of a run without a database: each persistence id's events in a list, in
/// sequence order, kept as the objects they are (nothing is serialized).
/// <para>Unlike Akka's <c>MemoryJournal</c>, deleting is cheap: <c>DeleteMessagesTo</c> removes the events
/// from the front of the list (Akka's walks every sequence number from 1 and searches its linked list
/// for each, so deleting after each snapshot of a long run grows quadratic). That is what lets an
/// in-memory run keep only the events its newest snapshot does not cover
/// (<see cref="SnapshotPolicy.DropCoveredEvents"/>), so its memory stays flat.</para>
/// <para>A write must continue its stream: its first sequence number one past the highest written (or
/// deleted); otherwise the call fails and writes nothing — as the Marten journal refuses a second
/// writer of a stream. So a stream has one writer, and replays need no replay filter.</para>
/// <para>It answers the journal protocol itself, in the order <c>AsyncWriteJournal</c> does (for a write:
/// <see cref="WriteMessagesSuccessful"/> or <see cref="WriteMessagesFailed"/>, then one answer per
/// event and per looped message, in the call's order; for a replay: the events, then
/// <see cref="RecoverySuccess"/>), but at once, from the message's own turn: nothing it does waits, and
/// the base class's task per call, circuit breaker and resequencer actor cost ~110 B of each fault's
/// allocations in the in-memory pipeline and a message hop before each answer.</para></summary>
public sealed class InMemoryJournal : WriteJournalBase
{
    /// <summary>The plugin id <see cref="SimHost.BaseConfig"/> selects.</summary>
    public const string PluginId = "akka.persistence.journal.actorsim-memory";

    public static Config Config => ConfigurationFactory.ParseString($$"""
        akka.persistence.journal.plugin = "{{PluginId}}"
        {{PluginId}} {
          class = "ActorSim.Actors.InMemoryJournal, ActorSim.Actors"
          plugin-dispatcher = "akka.actor.default-dispatcher"
        }
        """);

    private sealed class Stream
    {
        public readonly List<IPersistentRepresentation> Events = []; // kept, in sequence order
        public long Highest; // highest sequence number written, kept after deletes
    }

    private readonly Dictionary<string, Stream> _streams = new(StringComparer.Ordinal);
    private readonly bool _publish = Akka.Persistence.Persistence.Instance.Apply(Context.System).Settings.Internal.PublishPluginCommands;

    protected override bool Receive(object message)
    {
        switch (message)
        {
            case WriteMessages w: Write(w); return true;
            case ReplayMessages r: Replay(r); return true;
            case DeleteMessagesTo d: Delete(d); return true;
            default: return false;
        }
    }

    private Stream For(string persistenceId)
    {
        if (!_streams.TryGetValue(persistenceId, out var s)) _streams[persistenceId] = s = new Stream();
        return s;
    }

    private void Write(WriteMessages w)
    {
        // By index: Eventsourced sends its batch as an array and each AtomicWrite's events as an
        // immutable list; a foreach through their interfaces boxed an enumerator for each (~6 % of the
        // bytes the in-memory pipeline allocated, dotnet-trace).
        var messages = w.Messages as IReadOnlyList<IPersistentEnvelope> ?? [.. w.Messages];
        var failure = Refusal(messages);
        if (failure is null)
            for (var i = 0; i < messages.Count; i++)
            {
                if (messages[i] is not AtomicWrite write) continue;
                var stream = For(write.PersistenceId);
                var payload = Payload(write);
                for (var j = 0; j < payload.Count; j++)
                {
                    var p = payload[j];
                    // Kept without its sender (WriteJournalBase.PreparePersistentBatch), adapted.
                    stream.Events.Add(AdaptToJournal(p.Update(p.SequenceNr, p.PersistenceId, p.IsDeleted, ActorRefs.NoSender, p.WriterGuid)));
                }
                stream.Highest = write.HighestSequenceNr;
            }
        var target = w.PersistentActor;
        target.Tell(failure is null ? WriteMessagesSuccessful.Instance : new WriteMessagesFailed(failure, messages.Count(m => m is AtomicWrite)), Self);
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            if (m is AtomicWrite a)
            {
                var payload = Payload(a);
                for (var j = 0; j < payload.Count; j++)
                {
                    var p = payload[j];
                    target.Tell(failure is null ? new WriteMessageSuccess(p, w.ActorInstanceId) : new WriteMessageFailure(p, failure, w.ActorInstanceId), p.Sender);
                }
            }
            else target.Tell(new LoopMessageSuccess(m.Payload, w.ActorInstanceId), m.Sender);
        }
        if (_publish) Context.System.EventStream.Publish(w);
    }

    /// <summary>An AtomicWrite's events (its payload is an <c>IImmutableList</c> of them).</summary>
    private static IReadOnlyList<IPersistentRepresentation> Payload(AtomicWrite write) => (IReadOnlyList<IPersistentRepresentation>)write.Payload;

    /// <summary>Why the call must write nothing, if it must: every write checked before any is kept.
    /// Each must start one past the call's last earlier write of its stream, or the stream's end (a
    /// call holds one actor's writes, a few at most).</summary>
    private Exception? Refusal(IReadOnlyList<IPersistentEnvelope> messages)
    {
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i] is not AtomicWrite write) continue;
            var expected = -1L;
            for (var j = i - 1; j >= 0 && expected < 0; j--)
                if (messages[j] is AtomicWrite before && before.PersistenceId == write.PersistenceId) expected = before.HighestSequenceNr + 1;
            if (expected < 0) expected = (_streams.TryGetValue(write.PersistenceId, out var s) ? s.Highest : 0) + 1;
            if (write.LowestSequenceNr != expected)
                return new InvalidOperationException($"{write.PersistenceId}: a write from sequence number {write.LowestSequenceNr}, but the stream is at {expected - 1}");
        }
        return null;
    }

    private void Replay(ReplayMessages r)
    {
        var highest = 0L;
        if (_streams.TryGetValue(r.PersistenceId, out var stream))
        {
            highest = stream.Highest;
            var to = Math.Min(r.ToSequenceNr, highest);
            var sent = 0L;
            for (var i = FirstAtOrAfter(stream.Events, r.FromSequenceNr); i < stream.Events.Count && sent < r.Max && stream.Events[i].SequenceNr <= to; i++, sent++)
                foreach (var adapted in AdaptFromJournal(stream.Events[i]))
                    r.PersistentActor.Tell(new ReplayedMessage(adapted), ActorRefs.NoSender);
        }
        r.PersistentActor.Tell(new RecoverySuccess(highest), ActorRefs.NoSender);
        if (_publish) Context.System.EventStream.Publish(r);
    }

    private void Delete(DeleteMessagesTo d)
    {
        // The covered events are the list's front: one move of the rest (a snapshot's worth).
        if (_streams.TryGetValue(d.PersistenceId, out var stream))
            stream.Events.RemoveRange(0, FirstAtOrAfter(stream.Events, d.ToSequenceNr == long.MaxValue ? long.MaxValue : d.ToSequenceNr + 1));
        d.PersistentActor.Tell(new DeleteMessagesSuccess(d.ToSequenceNr), ActorRefs.NoSender);
        if (_publish) Context.System.EventStream.Publish(d);
    }

    /// <summary>The index of the first event kept with a sequence number at or after <paramref name="seq"/>
    /// (sequence numbers rise along the list).</summary>
    private static int FirstAtOrAfter(List<IPersistentRepresentation> events, long seq)
    {
        int lo = 0, hi = events.Count;
        while (lo < hi)
        {
            var mid = lo + (hi - lo) / 2;
            if (events[mid].SequenceNr < seq) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
}
