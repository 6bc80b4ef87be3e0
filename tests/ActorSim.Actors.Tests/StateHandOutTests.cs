using ActorSim.Domain;
using ActorSim.Domain.Kvm;
using Akka.Configuration;
using Akka.Persistence;
using Akka.Persistence.Snapshot;
using static ActorSim.Actors.Tests.Fixtures;

namespace ActorSim.Actors.Tests;

/// <summary>A snapshot store that keeps every snapshot it is given as the object itself (not a
/// serialized copy), so a test can see whether the actor changed it afterwards. Loads find nothing.</summary>
public sealed class KeepingSnapshotStore : SnapshotStore
{
    private static readonly List<(SnapshotMetadata Metadata, object Snapshot)> Saved = [];

    public static (SnapshotMetadata Metadata, object Snapshot)[] All()
    {
        lock (Saved) return [.. Saved];
    }

    public static Config Config => ConfigurationFactory.ParseString("""
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.keeping"
        akka.persistence.snapshot-store.keeping.class = "ActorSim.Actors.Tests.KeepingSnapshotStore, ActorSim.Actors.Tests"
        """);

    protected override Task<SelectedSnapshot?> LoadAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken = default) => Task.FromResult<SelectedSnapshot?>(null);

    protected override Task SaveAsync(SnapshotMetadata metadata, object snapshot, CancellationToken cancellationToken = default)
    {
        lock (Saved) Saved.Add((metadata, snapshot));
        return Task.CompletedTask;
    }

    protected override Task DeleteAsync(SnapshotMetadata metadata, CancellationToken cancellationToken = default) => Task.CompletedTask;
    protected override Task DeleteAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken = default) => Task.CompletedTask;
}

/// <summary>The KvmActor changes its stage-2 table in place across batches (its long-lived Stage2Edit),
/// so whatever it hands out — an answer to a state query, a snapshot — must never change after.</summary>
public class StateHandOutTests() : Akka.TestKit.Xunit2.TestKit(KeepingSnapshotStore.Config.WithFallback(SimHost.BaseConfig(false)))
{
    private const ulong RamGpa = 0x4000_0000UL;

    private async Task<SimHost> OneVmWithRam(string run, int snapshotEvery = 0)
    {
        var h = await SimHost.StartAsync(Sys, run, Policy("6.9"), [], [KvmVm.Create("vm1")], new SimHostOptions(SnapshotEvery: snapshotEvery));
        var ram = await h.Ask<MmResult>(h.Mm, new MmMapRam(16 * MiB, null));
        await h.Ask<KvmResult>(h.Vm("vm1"), new KvmSetMemslot(0, MemslotFlags.None, RamGpa, 16 * MiB, ram.Hva));
        return h;
    }

    private void Fault(SimHost h, ulong gpa)
    {
        h.Vcpu("vm1", 0).Tell(new VcpuRunAccess(gpa, AccessOp.Write), TestActor);
        Assert.Equal(FaultResult.Mapped, ExpectMsg<VcpuAccessDone>(TimeSpan.FromSeconds(5)).Result.Outcome.Result);
    }

    [Fact]
    public async Task A_state_answered_to_a_query_does_not_change_when_later_faults_map_more()
    {
        var h = await OneVmWithRam("handout-query");
        Fault(h, RamGpa);
        Fault(h, RamGpa + 0x1000); // the same bottom node: made by the actor's edit
        var before = await h.Ask<KvmVm>(h.Vm("vm1"), new KvmGetState());
        var leaves = before.Stage2.Leaves.ToArray();

        // More faults in the same nodes and beside them (the same inner nodes up the path).
        foreach (var page in new ulong[] { 2, 3, 17, 300, 4000 }) Fault(h, RamGpa + page * 0x1000);

        Assert.Equal(leaves, before.Stage2.Leaves.ToArray());
        Assert.Equal(leaves.Length, before.Stage2.Count);
        Assert.Null(before.Stage2.Lookup(RamGpa + 2 * 0x1000));
        var after = await h.Ask<KvmVm>(h.Vm("vm1"), new KvmGetState());
        Assert.Equal(leaves.Length + 5, after.Stage2.Count);
    }

    [Fact]
    public async Task Every_snapshot_stays_the_fold_of_the_events_up_to_its_sequence_number()
    {
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events, typeof(DomainEventPublished));
        var h = await OneVmWithRam("handout-snapshot", snapshotEvery: 1);
        foreach (var page in new ulong[] { 0, 1, 2, 17, 300, 4000, 5 }) Fault(h, RamGpa + page * 0x1000);
        await h.Ask<KvmVm>(h.Vm("vm1"), new KvmGetState()); // every write is durable

        var vmEvents = events.ReceiveWhile(TimeSpan.FromMilliseconds(300), m => (DomainEventPublished)m)
            .Where(p => p.Stream == h.VmStream("vm1")).Select(p => p.Event).ToArray();
        var snapshots = KeepingSnapshotStore.All().Where(s => s.Metadata.PersistenceId == h.VmStream("vm1")).ToArray();
        Assert.True(snapshots.Length >= 7, $"{snapshots.Length} snapshots");
        foreach (var (meta, snapshot) in snapshots)
        {
            var expected = vmEvents.Take((int)meta.SequenceNr).Aggregate(KvmVm.Create("vm1"), KvmVmDecider.Evolve);
            var state = Assert.IsType<KvmVm>(snapshot);
            Assert.True(expected.Stage2.Equals(state.Stage2),
                $"snapshot {meta.SequenceNr}: {state.Stage2.Count} leaves, the events up to it give {expected.Stage2.Count}");
        }
    }
}
