using ActorSim.Persistence.Journal;
using Akka;
using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence.Query;
using Akka.Streams.Dsl;
using Akka.Util;
using JasperFx.Events;
using Marten;

namespace ActorSim.Persistence.Query;

/// <summary>Akka.Persistence.Query on the Marten journal. Offsets are Marten's global sequence
/// numbers (<see cref="Sequence"/>), exclusive: AllEvents(Sequence(n)) starts after event n. Global
/// order is read through <see cref="GlobalOrder"/>, so no event is skipped. Live queries poll every
/// <c>refresh-interval</c>; "current" queries stop when they have caught up.</summary>
public sealed class MartenReadJournal : IReadJournal, IEventsByPersistenceIdQuery, ICurrentEventsByPersistenceIdQuery, IAllEventsQuery, ICurrentAllEventsQuery
{
    public const string Identifier = "akka.persistence.query.journal.marten";
    private readonly DocumentStore _store;
    private readonly PayloadCodec _codec;
    private readonly TimeSpan _refresh;
    private readonly int _pageSize;

    public MartenReadJournal(ExtendedActorSystem system, Config config)
    {
        _store = MartenStores.FromConfig(config);
        _codec = new PayloadCodec(system.Serialization);
        _refresh = config.GetTimeSpan("refresh-interval", TimeSpan.FromMilliseconds(200));
        _pageSize = Math.Max(1, config.GetInt("page-size", 1000));
    }

    public Source<EventEnvelope, NotUsed> EventsByPersistenceId(string persistenceId, long fromSequenceNr, long toSequenceNr) =>
        ByPersistenceId(persistenceId, fromSequenceNr, toSequenceNr, live: true);

    public Source<EventEnvelope, NotUsed> CurrentEventsByPersistenceId(string persistenceId, long fromSequenceNr, long toSequenceNr) =>
        ByPersistenceId(persistenceId, fromSequenceNr, toSequenceNr, live: false);

    public Source<EventEnvelope, NotUsed> AllEvents(Offset? offset = null) => All(offset, live: true);
    public Source<EventEnvelope, NotUsed> CurrentAllEvents(Offset offset) => All(offset, live: false);

    private Source<EventEnvelope, NotUsed> ByPersistenceId(string pid, long from, long to, bool live) =>
        Source.UnfoldAsync<long, IReadOnlyList<EventEnvelope>>(Math.Max(1, from), async next =>
        {
            while (true)
            {
                if (next > to) return Option<(long, IReadOnlyList<EventEnvelope>)>.None;
                await using var session = _store.QuerySession();
                var deletedTo = (await session.LoadAsync<JournalMetadata>(pid))?.DeletedTo ?? 0;
                var start = Math.Max(next, deletedTo + 1);
                var upTo = Math.Min(to, start + _pageSize - 1);
                var events = await session.Events.FetchStreamAsync(pid, version: upTo, fromVersion: start);
                var page = events.Where(e => e.Version >= start && e.Version <= upTo).ToList();
                if (page.Count > 0)
                {
                    var envelopes = page.Where(e => !((JournalEntry)e.Data).Rejected).Select(Envelope).ToList();
                    return (page[^1].Version + 1, envelopes);
                }
                if (!live) return Option<(long, IReadOnlyList<EventEnvelope>)>.None;
                await Task.Delay(_refresh);
            }
        }).SelectMany(x => x);

    private Source<EventEnvelope, NotUsed> All(Offset? offset, bool live)
    {
        var after = offset switch
        {
            null or NoOffset => 0L,
            Sequence s => s.Value,
            _ => throw new ArgumentException($"MartenReadJournal takes Sequence offsets, not {offset.GetType().Name}"),
        };
        return Source.UnfoldAsync<long, IReadOnlyList<EventEnvelope>>(after, async last =>
        {
            while (true)
            {
                var page = await GlobalOrder.ReadAfterAsync(_store, last, _pageSize);
                if (page.Count > 0)
                    return (page[^1].Sequence, page.Where(e => e.Data is JournalEntry { Rejected: false }).Select(Envelope).ToList());
                if (!live) return Option<(long, IReadOnlyList<EventEnvelope>)>.None;
                await Task.Delay(_refresh);
            }
        }).SelectMany(x => x);
    }

    private EventEnvelope Envelope(IEvent e)
    {
        var entry = (JournalEntry)e.Data;
        var payload = _codec.Decode(entry.Type, entry.SchemaVersion, entry.Data, entry.SerializerId, entry.Manifest, entry.Bytes);
        return new EventEnvelope(new Sequence(e.Sequence), e.StreamKey!, e.Version, payload, entry.Timestamp, entry.Tags);
    }
}

public sealed class MartenReadJournalProvider(ExtendedActorSystem system, Config config) : IReadJournalProvider
{
    public IReadJournal GetReadJournal() => new MartenReadJournal(system, config);
}
