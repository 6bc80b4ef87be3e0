using System.Collections.Immutable;
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
/// writer of a stream.</para></summary>
public sealed class InMemoryJournal : AsyncWriteJournal
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

    // One lock for every stream: writes come from the journal actor, replays may run beside them.
    private readonly Dictionary<string, Stream> _streams = new(StringComparer.Ordinal);

    private Stream For(string persistenceId)
    {
        if (!_streams.TryGetValue(persistenceId, out var s)) _streams[persistenceId] = s = new Stream();
        return s;
    }

    protected override Task<IImmutableList<Exception?>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken)
    {
        var writes = messages.ToArray();
        lock (_streams)
        {
            // Every write checked before any is kept: a failed call writes nothing. Each must start one
            // past the call's last earlier write of its stream, or the stream's end (a call holds one
            // actor's writes, a few at most).
            for (var i = 0; i < writes.Length; i++)
            {
                var write = writes[i];
                var expected = -1L;
                for (var j = i - 1; j >= 0 && expected < 0; j--)
                    if (writes[j].PersistenceId == write.PersistenceId) expected = writes[j].HighestSequenceNr + 1;
                if (expected < 0) expected = (_streams.TryGetValue(write.PersistenceId, out var s) ? s.Highest : 0) + 1;
                if (write.LowestSequenceNr != expected)
                    return Task.FromException<IImmutableList<Exception?>>(new InvalidOperationException(
                        $"{write.PersistenceId}: a write from sequence number {write.LowestSequenceNr}, but the stream is at {expected - 1}"));
            }
            foreach (var write in writes)
            {
                var stream = For(write.PersistenceId);
                stream.Events.AddRange((IImmutableList<IPersistentRepresentation>)write.Payload);
                stream.Highest = write.HighestSequenceNr;
            }
        }
        return Task.FromResult<IImmutableList<Exception?>>(null!); // every write succeeded
    }

    public override Task ReplayMessagesAsync(IActorContext context, string persistenceId, long fromSequenceNr, long toSequenceNr, long max, Action<IPersistentRepresentation> recoveryCallback)
    {
        var replayed = new List<IPersistentRepresentation>();
        lock (_streams)
        {
            if (!_streams.TryGetValue(persistenceId, out var stream)) return Task.CompletedTask;
            for (var i = FirstAtOrAfter(stream.Events, fromSequenceNr); i < stream.Events.Count && replayed.Count < max && stream.Events[i].SequenceNr <= toSequenceNr; i++)
                replayed.Add(stream.Events[i]);
        }
        foreach (var e in replayed) recoveryCallback(e);
        return Task.CompletedTask;
    }

    public override Task<long> ReadHighestSequenceNrAsync(string persistenceId, long fromSequenceNr, CancellationToken cancellationToken)
    {
        lock (_streams) return Task.FromResult(_streams.TryGetValue(persistenceId, out var stream) ? stream.Highest : 0L);
    }

    protected override Task DeleteMessagesToAsync(string persistenceId, long toSequenceNr, CancellationToken cancellationToken)
    {
        lock (_streams)
        {
            // The covered events are the list's front: one move of the rest (a snapshot's worth).
            if (_streams.TryGetValue(persistenceId, out var stream))
                stream.Events.RemoveRange(0, FirstAtOrAfter(stream.Events, toSequenceNr == long.MaxValue ? long.MaxValue : toSequenceNr + 1));
        }
        return Task.CompletedTask;
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
