using Akka.Configuration;
using Akka.Persistence;
using Akka.Persistence.Snapshot;
using Marten;

namespace ActorSim.Persistence.Journal;

/// <summary>Akka.Persistence snapshot store on Marten documents: one document per
/// (persistenceId, sequenceNr) — saving the same sequence number again overwrites it. Load picks the
/// newest snapshot within the criteria's sequence and timestamp bounds, riding out an outage for up to
/// <c>outage-limit</c> as the journal's recovery does (<see cref="Outages"/>). In deterministic mode
/// (<see cref="InTurn"/>) each call's database work is done inside the store's turn.</summary>
public sealed class MartenSnapshotStore : SnapshotStore
{
    private readonly DocumentStore _store;
    private readonly Akka.Serialization.Serialization _serialization;
    private readonly bool _inTurn;
    private readonly TimeSpan _outageLimit;
    private readonly Outages.Watcher _outages;

    public MartenSnapshotStore(Config config)
    {
        _store = MartenStores.FromConfig(config);
        _serialization = Context.System.Serialization;
        _inTurn = InTurn.Enabled(Context.System);
        _outageLimit = config.GetTimeSpan("outage-limit", Outages.DefaultLimit);
        _outages = Outages.Publishing(Context.System.EventStream);
    }

    private static IQueryable<SnapshotDocument> Matching(IQueryable<SnapshotDocument> q, string pid, SnapshotSelectionCriteria c)
    {
        // Plain locals: Marten's LINQ provider does not translate ?? inside the expression.
        var max = c.MaxSequenceNr;
        var min = c.MinSequenceNr;
        var maxTs = c.MaxTimeStamp.Ticks;
        var minTs = (c.MinTimestamp ?? DateTime.MinValue).Ticks;
        return q.Where(x => x.PersistenceId == pid && x.SequenceNr <= max && x.SequenceNr >= min && x.TimestampTicks <= maxTs && x.TimestampTicks >= minTs);
    }

    protected override Task<SelectedSnapshot?> LoadAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken) =>
        InTurn.Finish(_inTurn, Outages.RideOut(() => Load(persistenceId, criteria, cancellationToken), _outageLimit, _outages));

    private async Task<SelectedSnapshot?> Load(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken)
    {
        await using var session = _store.QuerySession();
        var doc = await Matching(session.Query<SnapshotDocument>(), persistenceId, criteria)
            .OrderByDescending(x => x.SequenceNr).FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false);
        if (doc is null) return null;
        var snapshot = _serialization.Deserialize(Convert.FromBase64String(doc.Bytes), doc.SerializerId, doc.Manifest ?? "");
        return new SelectedSnapshot(new SnapshotMetadata(persistenceId, doc.SequenceNr, new DateTime(doc.TimestampTicks, DateTimeKind.Utc)), snapshot);
    }

    protected override Task SaveAsync(SnapshotMetadata metadata, object snapshot, CancellationToken cancellationToken) =>
        InTurn.Finish(_inTurn, Save(metadata, snapshot, cancellationToken));

    private async Task Save(SnapshotMetadata metadata, object snapshot, CancellationToken cancellationToken)
    {
        var ser = _serialization.FindSerializerFor(snapshot);
        var doc = new SnapshotDocument
        {
            Id = $"{metadata.PersistenceId}/{metadata.SequenceNr}",
            PersistenceId = metadata.PersistenceId,
            SequenceNr = metadata.SequenceNr,
            TimestampTicks = metadata.Timestamp.Ticks,
            SerializerId = ser.Identifier,
            Manifest = Akka.Serialization.Serialization.ManifestFor(ser, snapshot),
            Bytes = Convert.ToBase64String(ser.ToBinary(snapshot)),
        };
        await using var session = _store.LightweightSession();
        session.Store(doc);
        await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override Task DeleteAsync(SnapshotMetadata metadata, CancellationToken cancellationToken) =>
        InTurn.Finish(_inTurn, Delete(metadata, cancellationToken));

    private async Task Delete(SnapshotMetadata metadata, CancellationToken cancellationToken)
    {
        await using var session = _store.LightweightSession();
        session.Delete<SnapshotDocument>($"{metadata.PersistenceId}/{metadata.SequenceNr}");
        await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override Task DeleteAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken) =>
        InTurn.Finish(_inTurn, Delete(persistenceId, criteria, cancellationToken));

    private async Task Delete(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken)
    {
        await using var session = _store.LightweightSession();
        var max = criteria.MaxSequenceNr;
        var min = criteria.MinSequenceNr;
        var maxTs = criteria.MaxTimeStamp.Ticks;
        var minTs = (criteria.MinTimestamp ?? DateTime.MinValue).Ticks;
        session.DeleteWhere<SnapshotDocument>(x => x.PersistenceId == persistenceId && x.SequenceNr <= max && x.SequenceNr >= min &&
                                                    x.TimestampTicks <= maxTs && x.TimestampTicks >= minTs);
        await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
    }
}
