using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;
using Akka.TestKit;

namespace ActorSim.Persistence.Tests;

/// <summary>The snapshot store contract (after Akka.Persistence.TCK's SnapshotStoreSpec). Every test
/// starts with snapshots s-1..s-5 at sequence numbers 1..5, one second apart.</summary>
public abstract class SnapshotStoreSpec : Akka.TestKit.Xunit2.TestKit
{
    protected readonly string Pid = $"p-{Guid.NewGuid():N}";
    protected readonly IActorRef Store;
    protected readonly List<SnapshotMetadata> Saved = [];
    private readonly TestProbe _probe;

    protected SnapshotStoreSpec(Config config, string name) : base(config, name)
    {
        Store = Akka.Persistence.Persistence.Instance.Apply(Sys).SnapshotStoreFor(null);
        _probe = CreateTestProbe();
        var t0 = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        for (var i = 1; i <= 5; i++) Saved.Add(Save(new SnapshotMetadata(Pid, i, t0.AddSeconds(i)), $"s-{i}"));
    }

    protected SnapshotMetadata Save(SnapshotMetadata md, object snapshot)
    {
        Store.Tell(new SaveSnapshot(md, snapshot), _probe.Ref);
        return _probe.ExpectMsg<SaveSnapshotSuccess>(TimeSpan.FromSeconds(20)).Metadata;
    }

    protected SelectedSnapshot? Load(SnapshotSelectionCriteria criteria, string? pid = null)
    {
        Store.Tell(new LoadSnapshot(pid ?? Pid, criteria, long.MaxValue), _probe.Ref);
        return _probe.ExpectMsg<LoadSnapshotResult>(TimeSpan.FromSeconds(20)).Snapshot;
    }

    [Fact]
    public void SnapshotStore_should_not_load_a_snapshot_given_an_invalid_persistence_id() =>
        Assert.Null(Load(SnapshotSelectionCriteria.Latest, "unknown-" + Pid));

    [Fact]
    public void SnapshotStore_should_not_load_a_snapshot_given_non_matching_timestamp_criteria() =>
        Assert.Null(Load(new SnapshotSelectionCriteria(long.MaxValue, new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc))));

    [Fact]
    public void SnapshotStore_should_not_load_a_snapshot_given_non_matching_sequence_number_criteria() =>
        Assert.Null(Load(new SnapshotSelectionCriteria(0)));

    [Fact]
    public void SnapshotStore_should_load_the_most_recent_snapshot()
    {
        var s = Load(SnapshotSelectionCriteria.Latest)!;
        Assert.Equal(("s-5", 5L, Pid), ((string)s.Snapshot, s.Metadata.SequenceNr, s.Metadata.PersistenceId));
        Assert.Equal(Saved[4].Timestamp, s.Metadata.Timestamp);
    }

    [Fact]
    public void SnapshotStore_should_load_the_most_recent_snapshot_matching_an_upper_sequence_number_bound() =>
        Assert.Equal("s-3", Load(new SnapshotSelectionCriteria(3))!.Snapshot);

    [Fact]
    public void SnapshotStore_should_load_the_most_recent_snapshot_matching_upper_sequence_number_and_timestamp_bounds()
    {
        Assert.Equal("s-2", Load(new SnapshotSelectionCriteria(4, Saved[1].Timestamp))!.Snapshot);
        Assert.Equal("s-3", Load(new SnapshotSelectionCriteria(3, Saved[3].Timestamp))!.Snapshot);
    }

    [Fact]
    public void SnapshotStore_should_delete_a_single_snapshot_identified_by_its_metadata()
    {
        Store.Tell(new DeleteSnapshot(Saved[3]), _probe.Ref);
        _probe.ExpectMsg<DeleteSnapshotSuccess>(TimeSpan.FromSeconds(20));
        Assert.Equal("s-3", Load(new SnapshotSelectionCriteria(4))!.Snapshot);
        Assert.Equal("s-5", Load(SnapshotSelectionCriteria.Latest)!.Snapshot);
    }

    [Fact]
    public void SnapshotStore_should_delete_all_snapshots_matching_the_criteria()
    {
        Store.Tell(new DeleteSnapshots(Pid, new SnapshotSelectionCriteria(3)), _probe.Ref);
        _probe.ExpectMsg<DeleteSnapshotsSuccess>(TimeSpan.FromSeconds(20));
        Assert.Null(Load(new SnapshotSelectionCriteria(3)));
        Assert.Equal("s-4", Load(new SnapshotSelectionCriteria(4))!.Snapshot);
    }

    [Fact]
    public void SnapshotStore_should_overwrite_a_snapshot_saved_again_with_the_same_sequence_number()
    {
        Save(new SnapshotMetadata(Pid, 5, Saved[4].Timestamp), "s-5-again");
        Assert.Equal("s-5-again", Load(SnapshotSelectionCriteria.Latest)!.Snapshot);
    }

    [Fact]
    public void SnapshotStore_should_save_and_load_a_10_kB_snapshot()
    {
        var big = new string('x', 10_000) + "end";
        Save(new SnapshotMetadata(Pid, 100, DateTime.UtcNow), big);
        Assert.Equal(big, Load(SnapshotSelectionCriteria.Latest)!.Snapshot);
    }

    [Fact]
    public void SnapshotStore_should_round_trip_a_structured_snapshot()
    {
        var state = new CounterState("vm1", 42, [1, 2, 3]);
        Save(new SnapshotMetadata(Pid, 200, DateTime.UtcNow), state);
        var loaded = Assert.IsType<CounterState>(Load(SnapshotSelectionCriteria.Latest)!.Snapshot);
        Assert.Equal(("vm1", 42L), (loaded.Name, loaded.Count));
        Assert.Equal([1L, 2, 3], loaded.Items);
    }

    public sealed record CounterState(string Name, long Count, long[] Items);
}

public sealed class MartenSnapshotStoreSpec(SchemaFixture schema)
    : SnapshotStoreSpec(PostgresSchema.AkkaConfig(schema.Name), "marten-snapshot-spec"), IClassFixture<SchemaFixture>;

/// <summary>The same in deterministic mode, where the store's database work is done inside its turn.</summary>
public sealed class DeterministicMartenSnapshotStoreSpec(SchemaFixture schema)
    : SnapshotStoreSpec(PostgresSchema.AkkaConfig(schema.Name).WithFallback(ActorSim.Actors.SimHost.BaseConfig(deterministic: true)), "deterministic-marten-snapshot-spec"),
        IClassFixture<SchemaFixture>;

/// <summary>The snapshot store contract against the store of runs without a database.</summary>
public sealed class InMemorySnapshotStoreSpec() : SnapshotStoreSpec(ActorSim.Actors.InMemorySnapshotStore.Config, "in-memory-snapshot-store-spec")
{
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private WeakReference SaveAndForget(long seq)
    {
        var state = new byte[4096];
        Save(new SnapshotMetadata(Pid, seq, DateTime.UtcNow), state);
        return new WeakReference(state);
    }

    [Fact]
    public void A_deleted_snapshot_is_not_kept()
    {
        // Akka's in-memory store (1.5.73) keeps saves and deletes queued until the next load: a long
        // run that never recovers kept every snapshot it had deleted.
        var older = SaveAndForget(100);
        var newer = SaveAndForget(101);
        var probe = CreateTestProbe();
        Store.Tell(new DeleteSnapshots(Pid, new SnapshotSelectionCriteria(100)), probe.Ref);
        probe.ExpectMsg<DeleteSnapshotsSuccess>(TimeSpan.FromSeconds(20));
        AwaitAssert(() =>
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Assert.False(older.IsAlive, "the deleted snapshot is still referenced");
        }, TimeSpan.FromSeconds(5));
        Assert.True(newer.IsAlive);
    }
}
