using CsCheck;
using FaultOutcome = ActorSim.Domain.Kvm.FaultOutcome;
using ActorSim.Domain.Invariants;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Simulation;
using ActorSim.Domain.Vfio;
using static ActorSim.Domain.Tests.TestHosts;

namespace ActorSim.Domain.Tests;

/// <summary>Random command sequences never break a §7 invariant, and folding the emitted events from
/// the initial states rebuilds the same state.</summary>
public class InvariantPropertyTests
{
    private static readonly string[] Kernels = ["6.8", "6.9", "6.17"];
    private static readonly ulong[] Gpas = [RamGpa, RamGpa + 0x3000, BarGpa, BarGpa + 0x1000, BarGpa + 2 * MiB + 0x7000, BarGpa + 15 * MiB, 0x90_0000_0000UL, 0x90_0000_0000UL + 0x2000];

    /// <summary>Interprets a list of random numbers as host operations on a fresh SyncKernel.</summary>
    private static SyncKernel Run(int policyPick, int[] ops, Action<SyncKernel, string>? afterEach = null)
    {
        var policy = Policy(Kernels[policyPick % 3], fwb: (policyPick / 3 & 1) == 0, dic: (policyPick / 6 & 1) == 0);
        var k = new SyncKernel(policy);
        k.AddDevice(Gpu());
        k.AddDevice(Nvgrace());
        k.AddVm(KvmVm.Create("vm1"));
        k.AddVm(KvmVm.Create("vm2"));
        foreach (var op in ops)
        {
            var r = (uint)op;
            var vm = (r & 1) == 0 ? "vm1" : "vm2";
            var a = (r >> 4) & 0xFF;
            var b = (r >> 12) & 0xFF;
            string what;
            switch ((r >> 1) % 12)
            {
                case 0:
                    what = "mmap bar";
                    k.MmapDevice("gpu0", new[] { 0, 0, 4, 2, 6 }[a % 5], (b % 4) * 0x1000UL, (1 + a % 8) * MiB / (b % 2 == 0 ? 1UL : 4UL),
                        (a & 0x40) == 0, (a & 0x80) == 0 ? Prot.Read | Prot.Write : Prot.Read, (b & 0x80) == 0 ? null : 0x5000_0000_0000UL, out _);
                    break;
                case 1:
                    what = "mmap nvgrace";
                    k.MmapDevice("gh0", (a & 1) == 0 ? VfioRegionIndex.NvgraceUsemem : VfioRegionIndex.NvgraceResmem, 0, 2 * MiB, true,
                        Prot.Read | Prot.Write, (b & 0x80) == 0 ? null : 0x5000_0000_0000UL, out _);
                    break;
                case 2:
                    what = "mmap ram";
                    k.MmapRam((1 + a % 4) * MiB, null, out _);
                    break;
                case 3 or 4:
                {
                    what = "memslot";
                    var vmas = k.Mm.Vmas;
                    if (vmas.Length == 0) break;
                    var v = vmas[(int)(a % vmas.Length)];
                    var gpa = new[] { RamGpa, BarGpa, 0x90_0000_0000UL }[b % 3];
                    var flags = (b & 0x40) != 0 ? MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES : (b & 0x20) != 0 ? MemslotFlags.KVM_MEM_READONLY : MemslotFlags.None;
                    k.SetMemslot(vm, (int)(b % 3), flags, gpa, Math.Min(v.Length, 16 * MiB), v.Start);
                    break;
                }
                case 5 or 6 or 7:
                    what = "access";
                    k.Access(vm, (int)(a % 2), Gpas[a % Gpas.Length] + (b % 4) * 0x1000UL, (AccessOp)(b % 3));
                    break;
                case 8:
                {
                    what = "munmap";
                    var vmas = k.Mm.Vmas;
                    if (vmas.Length == 0) break;
                    var v = vmas[(int)(a % vmas.Length)];
                    k.Munmap(v.Start + (b % 2) * 0x1000UL, (b & 4) == 0 ? v.Length : 0x1000);
                    break;
                }
                case 9:
                {
                    what = "mprotect";
                    var vmas = k.Mm.Vmas;
                    if (vmas.Length == 0) break;
                    var v = vmas[(int)(a % vmas.Length)];
                    k.Mprotect(v.Start, v.Length, (b & 1) == 0 ? Prot.Read : Prot.Read | Prot.Write);
                    break;
                }
                case 10:
                    what = "device state";
                    _ = (a % 4) switch
                    {
                        0 => k.SetDeviceMemory("gpu0", false),
                        1 => k.SetDeviceMemory("gpu0", true),
                        2 => k.ResetDevice((b & 1) == 0 ? "gpu0" : "gh0"),
                        _ => k.SetPowerState("gpu0", (b & 1) == 0 ? PciPowerState.D3Hot : PciPowerState.D0),
                    };
                    break;
                default:
                    what = "delete memslot";
                    k.DeleteMemslot(vm, (int)(b % 3));
                    break;
            }
            afterEach?.Invoke(k, what);
        }
        return k;
    }

    [Fact]
    public void Random_command_sequences_never_break_an_invariant()
    {
        Gen.Select(Gen.Int[0, 11], Gen.Int.Array[1, 80]).Sample((p, ops) =>
        {
            Run(p, ops, (k, what) =>
            {
                var v = k.CheckInvariants();
                if (v.Count > 0) throw new Exception($"after {what} under {k.Policy}: {string.Join("; ", v)}");
            });
        }, iter: 300, seed: "0N0XIzNsQ0O2");
    }

    [Fact]
    public void Folding_the_events_rebuilds_the_same_state()
    {
        Gen.Select(Gen.Int[0, 11], Gen.Int.Array[1, 80]).Sample((p, ops) =>
        {
            var k = Run(p, ops);
            var mm = AddressSpace.Empty(k.Policy.WordSize);
            var devices = new Dictionary<string, VfioDevice> { ["gpu0"] = Gpu(), ["gh0"] = Nvgrace() };
            var vms = new Dictionary<string, KvmVm> { ["vm1"] = KvmVm.Create("vm1"), ["vm2"] = KvmVm.Create("vm2") };
            foreach (var e in k.Log)
            {
                if (e.Stream == SyncKernel.MmStream) mm = AddressSpaceDecider.Evolve(mm, e.Event);
                else if (e.Stream.StartsWith("vfio-")) devices[e.Stream[5..]] = VfioDeviceDecider.Evolve(devices[e.Stream[5..]], e.Event);
                else vms[e.Stream[4..]] = KvmVmDecider.Evolve(vms[e.Stream[4..]], e.Event);
            }
            if (!mm.Vmas.SequenceEqual(k.Mm.Vmas) || mm.NextRamPfn != k.Mm.NextRamPfn) throw new Exception("mm differs");
            foreach (var (name, d) in devices)
            {
                var live = k.Device(name);
                if (d.MemoryEnabled != live.MemoryEnabled || d.Power != live.Power || !d.RequestedBars.SetEquals(live.RequestedBars))
                    throw new Exception($"device {name} differs");
            }
            foreach (var (name, vm) in vms)
            {
                var live = k.Vm(name);
                if (!vm.Memslots.SequenceEqual(live.Memslots) || !vm.Stage2.Equals(live.Stage2) ||
                    vm.MmuInvalidateSeq != live.MmuInvalidateSeq || vm.MmuInvalidateInProgress != live.MmuInvalidateInProgress)
                    throw new Exception($"vm {name} differs");
            }
        }, iter: 200, seed: "0N0XIzNsQ0O2");
    }

    [Fact]
    public void Every_recorded_decision_verifies_from_its_inputs()
    {
        Gen.Select(Gen.Int[0, 11], Gen.Int.Array[1, 80]).Sample((p, ops) =>
        {
            var k = Run(p, ops);
            foreach (var d in k.Log.Select(e => e.Event).OfType<Stage2FaultResolved>())
                if (!d.Decision.Verifies()) throw new Exception($"decision does not verify: {d.Decision.Outcome}");
        }, iter: 200);
    }

    [Fact]
    public void Random_sequences_reach_mapped_NC_and_device_leaves()
    {
        // Guards the two property tests above against vacuity: the generator does reach mappings.
        var types = new HashSet<(RuleSet, byte)>();
        for (var seed = 0; seed < 400; seed++)
        {
            var rnd = new Random(seed);
            var k = Run(seed % 12, Enumerable.Range(0, 60).Select(_ => rnd.Next()).ToArray());
            foreach (var vm in k.Vms.Values)
                foreach (var leaf in vm.Stage2.Leaves) types.Add((k.Policy.RuleSet, leaf.MemAttr));
        }
        Assert.Contains((RuleSet.V6_9, (byte)5), types);
        Assert.Contains((RuleSet.V6_8, (byte)1), types);
        Assert.Contains((RuleSet.V6_17, (byte)6), types);
    }
}

/// <summary>The checker itself catches broken states and events (it is not vacuous).</summary>
public class InvariantCheckerTests
{
    private static Stage2FaultResolved Mapped(Func<FaultInputs, FaultInputs> change, Func<FaultOutcome, FaultOutcome>? outcome = null)
    {
        var i = change(Inputs(Policy("6.9"), VfioBarFlags | VmFlags.VM_ALLOW_ANY_UNCACHED, MairIndex.MT_DEVICE_nGnRnE, false));
        var o = KvmHandleGuestAbort.Decide(i with { SeqAtLock = i.SampledSeq, InProgressAtLock = 0 });
        return new Stage2FaultResolved(new DecisionRecord(i, outcome?.Invoke(o) ?? o));
    }

    [Fact]
    public void An_install_after_an_invalidation_is_reported_as_I5() =>
        Assert.Contains(Invariants.Invariants.CheckEvent(Mapped(i => i with { SeqAtLock = i.SampledSeq + 1 })), v => v.Invariant == "I5");

    [Fact]
    public void An_executable_NC_leaf_is_reported_as_I1() =>
        Assert.Contains(Invariants.Invariants.CheckEvent(Mapped(i => i, o => o with
        {
            Leaf = o.Leaf!.Value with { Descriptor = o.Leaf.Value.Descriptor & ~Stage2.Stage2Descriptor.XnBit },
        })), v => v.Invariant == "I1");

    [Fact]
    public void NC_without_the_flag_is_reported_as_I2() =>
        Assert.Contains(Invariants.Invariants.CheckEvent(Mapped(i => i with { Vma = i.Vma!.Value with { Flags = VfioBarFlags } },
            o => KvmHandleGuestAbort.Decide(Inputs(Policy("6.9"), VfioBarFlags | VmFlags.VM_ALLOW_ANY_UNCACHED, MairIndex.MT_DEVICE_nGnRnE, false)))), v => v.Invariant == "I2");

    [Fact]
    public void ENOEXEC_returned_to_the_VMM_is_reported_as_I13() =>
        Assert.Contains(Invariants.Invariants.CheckEvent(Mapped(i => i, o => o with { Result = FaultResult.Error, Errno = Errno.ENOEXEC })), v => v.Invariant == "I13");

    [Fact]
    public void A_leaf_left_after_the_device_memory_is_disabled_is_reported_as_I4_or_I6()
    {
        var k = WithMappedBar(Policy("6.9"), out _);
        var leaf = k.Access("vm1", 0, BarGpa, AccessOp.Read).Outcome.Leaf!.Value;
        k.SetDeviceMemory("gpu0", false);
        // Put the leaf back by hand, as a kernel that skipped the notifier would leave it.
        var vm = KvmVmDecider.Evolve(k.Vm("vm1"), new Stage2FaultResolved(new DecisionRecord(
            Inputs(k.Policy, VfioBarFlags, MairIndex.MT_DEVICE_nGnRnE, false) with { Vm = "vm1" },
            new FaultOutcome(FaultResult.Mapped, Errno.None, leaf, default, DecisionPath.MapLeaf))));
        var view = k.View with { Vms = new Dictionary<string, KvmVm> { ["vm1"] = vm } };
        var found = Invariants.Invariants.CheckState(view).Select(v => v.Invariant).ToHashSet();
        Assert.Contains("I6", found);
        Assert.Contains("I4", found);
    }

    [Fact]
    public void After_PTEs_are_zapped_the_leaves_over_that_user_range_are_checked_and_no_others()
    {
        var k = WithGpuAndVm(Policy("6.9"), out var ramHva);
        const ulong far = 512 * MiB;
        k.Access("vm1", 0, RamGpa, AccessOp.Write);
        k.Access("vm1", 0, RamGpa + far, AccessOp.Write);
        // Both user pages zapped, the leaves left, as a kernel that skipped the notifier would leave them.
        var mm = AddressSpaceDecider.Evolve(AddressSpaceDecider.Evolve(k.Mm, new UserPtesZapped(ramHva, ramHva + 0x1000)),
            new UserPtesZapped(ramHva + far, ramHva + far + 0x1000));
        var view = k.View with { Mm = mm };
        string[] Found(Action<List<Violation>> check)
        {
            var found = new List<Violation>();
            check(found);
            return [.. found.Select(v => v.ToString()).Order()];
        }
        var everything = Found(f => f.AddRange(Invariants.Invariants.CheckState(view)));
        Assert.Equal(2, everything.Count(v => v.StartsWith("I4")));
        // The range over both: what the whole check finds. Over one: that leaf's.
        Assert.Equal(everything, Found(f => Invariants.Invariants.CheckUserRange(view, ramHva, ramHva + far + 0x1000, f)));
        var first = Assert.Single(Found(f => Invariants.Invariants.CheckUserRange(view, ramHva, ramHva + 0x1000, f)));
        Assert.Contains($"gpa 0x{RamGpa:x}", first);
        Assert.Empty(Found(f => Invariants.Invariants.CheckUserRange(view, ramHva + 0x1000, ramHva + far, f)));
    }

    [Fact]
    public void Dirty_logging_over_PFNMAP_is_reported_as_I8()
    {
        var e = new MemslotSet("vm1", new Memslot(1, 0, 0x1000, 0x1000, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES), MemslotChange.Create,
            [new VmaSnapshot(0x1000, 0x2000, VfioBarFlags, 0, MairIndex.MT_DEVICE_nGnRnE)]);
        Assert.Contains(Invariants.Invariants.CheckEvent(e), v => v.Invariant == "I8");
    }
}
