using Akka.Configuration;
using Akka.Persistence;
using Akka.Persistence.Snapshot;

namespace ActorSim.Actors;

/// <summary>The snapshot store of a run without a database: each persistence id's snapshots as the
/// objects themselves (a snapshot costs a reference; <see cref="DeciderActor{TState}.HandOut"/> keeps
/// what was handed out from changing). Saves and deletes take effect at once. Akka's in-memory store
/// (1.5.73) queues every save and delete until the next load, and an actor loads only when it
/// recovers: in a long run each snapshot, and the stage-2 nodes only it still shares, stayed in memory.
/// The criteria mean what they mean to the Marten store (the same <c>SnapshotStoreSpec</c>).</summary>
public sealed class InMemorySnapshotStore : SnapshotStore
{
    /// <summary>The plugin id <see cref="SimHost.BaseConfig"/> selects.</summary>
    public const string PluginId = "akka.persistence.snapshot-store.actorsim-memory";

    public static Config Config => ConfigurationFactory.ParseString($$"""
        akka.persistence.snapshot-store.plugin = "{{PluginId}}"
        {{PluginId}} {
          class = "ActorSim.Actors.InMemorySnapshotStore, ActorSim.Actors"
          plugin-dispatcher = "akka.actor.default-dispatcher"
        }
        """);

    private readonly Dictionary<string, List<SelectedSnapshot>> _snapshots = new(StringComparer.Ordinal);

    private static bool Matches(SnapshotMetadata m, SnapshotSelectionCriteria c) =>
        m.SequenceNr <= c.MaxSequenceNr && m.SequenceNr >= c.MinSequenceNr &&
        m.Timestamp <= c.MaxTimeStamp && m.Timestamp >= (c.MinTimestamp ?? DateTime.MinValue);

    protected override Task<SelectedSnapshot?> LoadAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken)
    {
        lock (_snapshots)
        {
            var newest = _snapshots.TryGetValue(persistenceId, out var list)
                ? list.Where(s => Matches(s.Metadata, criteria)).MaxBy(s => s.Metadata.SequenceNr)
                : null;
            return Task.FromResult(newest);
        }
    }

    protected override Task SaveAsync(SnapshotMetadata metadata, object snapshot, CancellationToken cancellationToken)
    {
        lock (_snapshots)
        {
            if (!_snapshots.TryGetValue(metadata.PersistenceId, out var list)) _snapshots[metadata.PersistenceId] = list = [];
            list.RemoveAll(s => s.Metadata.SequenceNr == metadata.SequenceNr); // saved again: overwritten
            list.Add(new SelectedSnapshot(metadata, snapshot));
        }
        return Task.CompletedTask;
    }

    protected override Task DeleteAsync(SnapshotMetadata metadata, CancellationToken cancellationToken)
    {
        lock (_snapshots)
            if (_snapshots.TryGetValue(metadata.PersistenceId, out var list)) list.RemoveAll(s => s.Metadata.SequenceNr == metadata.SequenceNr);
        return Task.CompletedTask;
    }

    protected override Task DeleteAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken)
    {
        lock (_snapshots)
            if (_snapshots.TryGetValue(persistenceId, out var list)) list.RemoveAll(s => Matches(s.Metadata, criteria));
        return Task.CompletedTask;
    }
}
