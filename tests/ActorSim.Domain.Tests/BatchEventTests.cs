using CsCheck;
using ActorSim.Domain.Invariants;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Simulation;
using Xunit;
using static ActorSim.Domain.Tests.TestHosts;

namespace ActorSim.Domain.Tests;

/// <summary>A batch event (Stage2FaultsResolved) means exactly its decisions one after another: the
/// same state, the same per-decision invariant findings, the same replay counts.</summary>
public class BatchEventTests
{
    private static List<Stage2FaultResolved> Decisions(out SyncKernel k)
    {
        k = WithMappedBar(Policy("6.9"), out _);
        // Each access in its own 2 MiB of the BAR (a block mapping covers the rest of its 2 MiB).
        for (var i = 0; i < 6; i++) k.Access("vm1", i % 2, BarGpa + (ulong)i * 2 * MiB, i % 3 == 0 ? AccessOp.Write : AccessOp.Read);
        for (var i = 0; i < 4; i++) k.Access("vm1", 0, RamGpa + (ulong)i * 0x1000, AccessOp.Write);
        k.Access("vm1", 1, BarGpa + 7 * 2 * MiB, AccessOp.Exec); // a decision that maps nothing
        return k.Log.Select(e => e.Event).OfType<Stage2FaultResolved>().ToList();
    }

    [Fact]
    public void Folding_a_batch_gives_the_state_of_folding_its_decisions_one_by_one()
    {
        var singles = Decisions(out _);
        Assert.True(singles.Count >= 10);
        var start = KvmVm.Create("vm1");
        var one = singles.Aggregate(start, (s, e) => KvmVmDecider.Evolve(s, e));
        var batch = KvmVmDecider.Evolve(start, new Stage2FaultsResolved([.. singles.Select(s => s.Decision)]));
        Assert.Equal(one, batch);
        Assert.True(batch.Stage2.Count > 0);
    }

    [Fact]
    public void A_batch_is_checked_decision_by_decision()
    {
        var singles = Decisions(out _);
        // Break two decisions as a kernel without the retry check would: I5 for each.
        var mapped = singles.Select((s, i) => (s, i)).Where(x => x.s.Decision.Outcome.Leaf is not null).Select(x => x.i).ToArray();
        var broken = singles.Select((s, i) => i == mapped[1] || i == mapped[^1]
            ? s.Decision with { Inputs = s.Decision.Inputs with { SeqAtLock = s.Decision.Inputs.SampledSeq + 1 } }
            : s.Decision).ToArray();
        var expected = broken.SelectMany(d => Invariants.Invariants.CheckEvent(new Stage2FaultResolved(d))).ToList();
        Assert.Equal(2, expected.Count(v => v.Invariant == "I5"));
        Assert.Equal(expected, Invariants.Invariants.CheckEvent(new Stage2FaultsResolved(broken)));
    }

    [Fact]
    public void A_violation_names_the_VM_vCPU_and_page_it_is_about()
    {
        // The place is formatted only when a check fails; these pin what it says.
        var d = Decisions(out _).First(x => x.Decision.Outcome.Leaf is not null).Decision;
        var broken = d with { Inputs = d.Inputs with { SeqAtLock = d.Inputs.SampledSeq + 1 } };
        var i5 = Assert.Single(Invariants.Invariants.CheckEvent(new Stage2FaultsResolved([d, broken, d])));
        Assert.StartsWith($"vm vm1 vcpu {d.Inputs.Vcpu} gpa 0x{d.Inputs.Gpa:x}: installed with seq", i5.Detail);
        Assert.Empty(Invariants.Invariants.CheckEvent(new Stage2FaultsResolved([d, d])));

        var leaf = new Stage2Leaf(0x4000_0000, 3, Stage2.KvmPgtableProt.KVM_PGTABLE_PROT_R, 0x1000);
        var found = new List<Violation>();
        Invariants.Invariants.CheckLeaf(new SystemView(Policy("6.9"), Mm.AddressSpace.Empty(), new Dictionary<string, Vfio.VfioDevice>(),
            new Dictionary<string, KvmVm>()), KvmVm.Create("vm1"), leaf, found);
        Assert.NotEmpty(found);
        Assert.All(found, v => Assert.StartsWith("vm vm1 gpa 0x40000000 L3: ", v.Detail));
    }

    [Fact]
    public void Replay_counts_and_verifies_every_decision_of_a_batch()
    {
        var singles = Decisions(out _);
        var r = new Replay();
        r.Apply(1, "r/kvm-vm1", new Stage2FaultsResolved([.. singles.Select(s => s.Decision)]));
        Assert.Equal(singles.Count, r.Decisions);
        Assert.Equal(0, r.Mismatches);
        var tampered = singles.Select(s => s.Decision).ToArray();
        var mapped = Array.FindIndex(tampered, d => d.Outcome.Leaf is not null);
        tampered[mapped] = tampered[mapped] with { Outcome = tampered[mapped].Outcome with { Result = FaultResult.Retry } };
        var r2 = new Replay();
        r2.Apply(1, "r/kvm-vm1", new Stage2FaultsResolved(tampered));
        Assert.Equal(1, r2.Mismatches);
    }

    [Fact]
    public void The_VMs_a_replay_hands_out_stay_as_they_were_while_it_goes_on()
    {
        var singles = Decisions(out _);
        var r = new Replay();
        for (var i = 0; i < 4; i++) r.Apply(i + 1, "r/kvm-vm1", singles[i]);
        var before = r.Vms["vm1"];
        var leaves = before.Stage2.Leaves.ToArray();
        for (var i = 4; i < singles.Count; i++) r.Apply(i + 1, "r/kvm-vm1", singles[i]);

        Assert.Equal(leaves, before.Stage2.Leaves.ToArray());
        Assert.Equal(leaves.Length, before.Stage2.Count);
        // And the replay's own VM went on: the fold of every decision.
        Assert.Equal(singles.Aggregate(KvmVm.Create("vm1"), (s, e) => KvmVmDecider.Evolve(s, e)), r.Vms["vm1"]);
    }

    [Fact]
    public void Folding_with_one_edit_kept_across_events_gives_the_state_of_folding_without()
    {
        var k = WithGpuAndVm(Policy("6.9"), out var ramHva);
        for (var i = 0; i < 40; i++) k.Access("vm1", i % 2, RamGpa + (ulong)(i * 7 % 64) * 0x1000, AccessOp.Write);
        Assert.Equal(Errno.None, k.Munmap(ramHva + 8 * 0x1000, 4 * 0x1000)); // the notifier unmaps those IPAs
        for (var i = 0; i < 20; i++) k.Access("vm1", 0, RamGpa + (ulong)(i * 5 % 64) * 0x1000, AccessOp.Write);
        var vmEvents = k.Log.Where(e => e.Stream.EndsWith("kvm-vm1")).Select(e => e.Event).ToList();
        Assert.Contains(vmEvents, e => e is Stage2RangeUnmapped);
        var edit = new Stage2Edit();
        var start = KvmVm.Create("vm1");
        var plain = new List<KvmVm> { start };
        var edited = start;
        foreach (var e in vmEvents)
        {
            plain.Add(KvmVmDecider.Evolve(plain[^1], e));
            edited = KvmVmDecider.Evolve(edited, e, edit);
            Assert.Equal(Shape(plain[^1]), Shape(edited));
        }
        // Without an edit nothing is changed in place: every state of the plain fold is as it was made.
        for (var i = 1; i < plain.Count; i++)
            Assert.Equal(Shape(vmEvents.Take(i).Aggregate(start, (s, e) => KvmVmDecider.Evolve(s, e))), Shape(plain[i]));
    }

    /// <summary>What a VM holds, comparable by value (its memslot map compares by reference).</summary>
    private static string Shape(KvmVm vm) =>
        $"{string.Join(";", vm.Memslots.Values)} | {vm.Stage2.Count}: {string.Join(";", vm.Stage2.Leaves)} | {vm.MmuInvalidateSeq} {vm.MmuInvalidateInProgress}";

    [Fact]
    public void A_batch_of_one_is_the_plain_event()
    {
        var d = Decisions(out _)[0].Decision;
        Assert.IsType<Stage2FaultResolved>(DecisionEvents.For([d]));
        Assert.IsType<Stage2FaultsResolved>(DecisionEvents.For([d, d]));
        Assert.Equal([d, d], DecisionEvents.Of(DecisionEvents.For([d, d])));
    }
}

public class PopulatedBatchTests
{
    [Fact]
    public void A_pass_s_populated_ranges_as_one_event_give_the_same_address_space()
    {
        var k = WithGpuAndVm(Policy("6.9"), out _);
        for (var i = 0; i < 8; i++) k.Access("vm1", 0, RamGpa + (ulong)(i * 3) * 0x1000, AccessOp.Write);
        var mmEvents = k.Log.Where(e => e.Stream.Contains("mm")).Select(e => e.Event).ToList();
        var populated = mmEvents.OfType<Mm.UserPtesPopulated>().Select(p => new Mm.PteRange(p.Start, p.End)).ToList();
        Assert.True(populated.Count >= 8);
        // The VMAs came first (mmap), the faults' PTEs after them.
        var before = mmEvents.TakeWhile(e => e is not Mm.UserPtesPopulated).ToList();
        Assert.Equal(mmEvents.Count, before.Count + populated.Count);
        var passEvents = Mm.AddressSpaceDecider.PopulatedEvents(populated);
        Assert.IsType<Mm.UserPtesPopulatedBatch>(Assert.Single(passEvents));
        var one = mmEvents.Aggregate(Mm.AddressSpace.Empty(), Mm.AddressSpaceDecider.Evolve);
        var batch = before.Concat(passEvents).Aggregate(Mm.AddressSpace.Empty(), Mm.AddressSpaceDecider.Evolve);
        Assert.Equal(one.Vmas.Select(v => v.Ptes.ToString()), batch.Vmas.Select(v => v.Ptes.ToString()));
        Assert.Equal(one.Vmas.Length, batch.Vmas.Length);

        Assert.Empty(Mm.AddressSpaceDecider.PopulatedEvents([]));
        Assert.Equal(new Mm.UserPtesPopulated(populated[0].Start, populated[0].End), Assert.Single(Mm.AddressSpaceDecider.PopulatedEvents([populated[0]])));
    }

    [Fact]
    public void A_batch_gives_the_address_space_its_ranges_give_one_by_one()
    {
        var k = WithGpuAndVm(Policy("6.9"), out _);
        for (var i = 0; i < 3; i++) k.MmapRam(0x20000, null, out _);
        var start = k.Log.Where(e => e.Stream.Contains("mm")).Select(e => e.Event).Aggregate(Mm.AddressSpace.Empty(), Mm.AddressSpaceDecider.Evolve);
        Assert.True(start.Vmas.Length >= 3, $"{start.Vmas.Length} VMAs");
        const ulong page = 0x1000;
        // Ranges near the VMAs' edges (so some cross an edge or lie in a gap), any order, some empty.
        var range = Gen.Select(Gen.Int[0, start.Vmas.Length - 1], Gen.Bool, Gen.Int[-3, 6], Gen.Int[0, 8]).Select(t =>
        {
            var (vma, fromEnd, off, len) = t;
            var v = start.Vmas[vma];
            var s = (ulong)((long)(fromEnd ? v.End : v.Start) + off * (long)page);
            return new Mm.PteRange(s, s + (ulong)len * page);
        });
        range.Array[2, 40].Sample(ranges =>
        {
            var one = ranges.Aggregate(start, (a, r) => Mm.AddressSpaceDecider.Evolve(a, new Mm.UserPtesPopulated(r.Start, r.End)));
            var batch = Mm.AddressSpaceDecider.Evolve(start, new Mm.UserPtesPopulatedBatch(ranges));
            return one.Vmas.SequenceEqual(batch.Vmas);
        });
    }
}
