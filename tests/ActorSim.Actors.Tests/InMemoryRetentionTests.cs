using ActorSim.Domain;
using ActorSim.Domain.Kvm;
using Akka.Actor;
using Akka.Persistence;
using static ActorSim.Actors.Tests.Fixtures;

namespace ActorSim.Actors.Tests;

/// <summary>Without a database, a decider actor keeps in the journal only the events its newest snapshot
/// does not cover (SnapshotPolicy.DropCoveredEvents), and recovers from the two.</summary>
public class InMemoryRetentionTests() : Akka.TestKit.Xunit2.TestKit(SimHost.BaseConfig(false))
{
    private const ulong RamGpa = 0x4000_0000UL;

    private (long[] Kept, long Highest) Journal(string persistenceId)
    {
        var probe = CreateTestProbe();
        Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null).Tell(new ReplayMessages(0, long.MaxValue, long.MaxValue, persistenceId, probe.Ref));
        var kept = new List<long>();
        while (true)
        {
            switch (probe.ReceiveOne(TimeSpan.FromSeconds(5)))
            {
                case ReplayedMessage r: kept.Add(r.Persistent.SequenceNr); break;
                case RecoverySuccess s: return ([.. kept], s.HighestSequenceNr);
                case var m: throw new Xunit.Sdk.XunitException($"unexpected {m}");
            }
        }
    }

    [Fact]
    public async Task An_actor_keeps_only_the_events_after_its_newest_snapshot_and_recovers_from_both()
    {
        var h = await SimHost.StartAsync(Sys, "retention", Policy("6.9"), [], [KvmVm.Create("vm1")], new SimHostOptions(SnapshotEvery: 3));
        var ram = await h.Ask<MmResult>(h.Mm, new MmMapRam(16 * MiB, null));
        await h.Ask<KvmResult>(h.Vm("vm1"), new KvmSetMemslot(0, MemslotFlags.None, RamGpa, 16 * MiB, ram.Hva));
        for (ulong page = 0; page < 10; page++)
        {
            h.Vcpu("vm1", 0).Tell(new VcpuRunAccess(RamGpa + page * 0x3000, AccessOp.Write), TestActor);
            Assert.Equal(FaultResult.Mapped, ExpectMsg<VcpuAccessDone>(TimeSpan.FromSeconds(5)).Result.Outcome.Result);
        }
        var before = await h.Ask<KvmVm>(h.Vm("vm1"), new KvmGetState());

        // A snapshot every 3 events, each followed by a delete of what it covers: at most the 2 newest are left.
        AwaitAssert(() =>
        {
            var (kept, highest) = Journal(h.VmStream("vm1"));
            Assert.True(highest >= 11, $"highest {highest}"); // the memslot and 10 faults, one batch each
            Assert.InRange(kept.Length, 0, 2);
            Assert.Equal(Enumerable.Range(0, kept.Length).Select(i => highest - kept.Length + 1 + i), kept);
        }, TimeSpan.FromSeconds(5));
        AwaitAssert(() => Assert.InRange(Journal(h.MmStream).Kept.Length, 0, 2), TimeSpan.FromSeconds(5));

        // A new incarnation recovers the state from the newest snapshot and the events after it.
        var probe = CreateTestProbe();
        probe.Watch(h.Vm("vm1"));
        h.Vm("vm1").Tell(PoisonPill.Instance);
        probe.ExpectTerminated(h.Vm("vm1"));
        var again = Sys.ActorOf(KvmActor.Props(h.VmStream("vm1"), KvmVm.Create("vm1"), Policy("6.9"), h.Mm, new SnapshotPolicy(3, DropCoveredEvents: true)));
        var after = await again.Ask<KvmVm>(new KvmGetState(), TimeSpan.FromSeconds(5));
        Assert.Equal(10, after.Stage2.Count);
        Assert.True(before.Stage2.Equals(after.Stage2), $"recovered {after.Stage2.Count} leaves, had {before.Stage2.Count}");
        Assert.Equal(before.Memslots, after.Memslots);
    }

    [Fact]
    public void In_memory_actors_snapshot_every_thousand_events_by_default_and_drop_what_a_snapshot_covers()
    {
        Assert.Equal(new SnapshotPolicy(SimHostOptions.InMemorySnapshotEvery, DropCoveredEvents: true), new SimHostOptions().Snapshots(Sys));
        Assert.Equal(new SnapshotPolicy(0, DropCoveredEvents: true), new SimHostOptions(SnapshotEvery: 0).Snapshots(Sys));
    }
}
