using ActorSim.Domain.Invariants;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Simulation;
using ActorSim.Domain.Stage2;
using static ActorSim.Domain.Tests.TestHosts;

namespace ActorSim.Domain.Tests;

/// <summary>The GICv2 virtual CPU interface, which KVM maps into the guest itself (vgic_v2_map_resources →
/// kvm_phys_addr_ioremap): Device-nGnRE whatever the kernel, FWB or VMA flags, because no VMA, memslot or
/// user_mem_abort is involved; the address is checked as vgic_check_iorange does.</summary>
public class VgicV2Tests
{
    private const ulong Gicc = 0x801_0000; // QEMU virt's GICC

    [Theory]
    [InlineData("6.8", false)]
    [InlineData("6.9", true)]
    [InlineData("6.17", true)]
    [InlineData("6.17", false)]
    public void KVM_maps_the_CPU_interface_Device_nGnRE_itself_on_every_kernel(string kernel, bool fwb)
    {
        var k = WithMappedBar(Policy(kernel, fwb), out _);
        Assert.Equal(Errno.None, k.VgicV2MapResources("vm1", Gicc));
        var vm = k.Vm("vm1");
        for (var gpa = Gicc; gpa < Gicc + KvmVmDecider.VgicV2CpuSize; gpa += 0x1000)
        {
            var leaf = vm.Stage2.Lookup(gpa)!.Value;
            Assert.Equal((gpa, 3, S2Type.Device), (leaf.Gpa, leaf.Level, MemAttr.TypeOf(leaf.MemAttr, fwb)));
            Assert.Equal(MemType.DeviceNGnRE, MemAttr.MemTypeOf(MemAttr.TypeOf(leaf.MemAttr, fwb)!.Value));
            Assert.Equal((true, true, false), (leaf.Readable, leaf.Writable, leaf.Executable));
            Assert.Equal((PhysMap.GicvBase + (gpa - Gicc)) >> PageGeometry.PageShift, leaf.Pfn);
        }
        Assert.Null(vm.Stage2.Lookup(Gicc + KvmVmDecider.VgicV2CpuSize));
        Assert.Null(vm.SlotFor(Gicc)); // in no memslot
        // Loads and stores do not fault; a fetch does (XN) and, with no memslot, is an injected abort.
        Assert.Equal(DecisionPath.NoFault, k.Access("vm1", 0, Gicc + 0x1000, AccessOp.Write).Outcome.Path);
        var fetch = k.Access("vm1", 0, Gicc, AccessOp.Exec).Decision!;
        Assert.Equal((FaultResult.GuestAbort, Errno.ENOEXEC, DecisionPath.NoMemslotExec), (fetch.Outcome.Result, fetch.Outcome.Errno, fetch.Outcome.Path));
        Assert.True(fetch.Inputs.FaultIsPerm);
        // The BAR beside it maps as the kernel decides (Normal-NC from 6.9), and every invariant holds over both.
        var bar = k.Access("vm1", 0, BarGpa, AccessOp.Read).Outcome.Leaf!.Value;
        Assert.Equal(kernel == "6.8" ? S2Type.Device : S2Type.NormalNC, MemAttr.TypeOf(bar.MemAttr, fwb));
        Assert.Empty(k.CheckInvariants());
        Assert.Empty(Invariants.Invariants.CheckState(k.View));
    }

    [Fact]
    public void The_address_is_checked_as_vgic_check_iorange_does_in_its_order()
    {
        var k = new SyncKernel(Policy("6.9"));
        k.AddVm(KvmVmDecider.CreateVm("vm1", 32, false, false).Vm!);
        // -EINVAL before -E2BIG: misaligned and past the 4 GiB IPA space.
        Assert.Equal(Errno.EINVAL, k.VgicV2MapResources("vm1", 0x1_0000_0800));
        Assert.Equal(Errno.E2BIG, k.VgicV2MapResources("vm1", 0x1_0000_0000));
        Assert.Equal(Errno.E2BIG, k.VgicV2MapResources("vm1", 0xffff_f000)); // the 8 KiB run past the end
        Assert.Equal(Errno.EINVAL, k.VgicV2MapResources("vm1", 0xffff_ffff_ffff_f000)); // addr + size wraps
        Assert.Empty(k.Log);
        Assert.Equal(Errno.None, k.VgicV2MapResources("vm1", 0xffff_e000));
        // Once set, -EEXIST before anything else.
        Assert.Equal(Errno.EEXIST, k.VgicV2MapResources("vm1", 0x801_0800));
        Assert.Equal(Errno.EEXIST, k.VgicV2MapResources("vm1", 0xffff_e000));
        Assert.Single(k.Log);
    }

    [Fact]
    public void A_leaf_of_KVMs_own_mapping_is_exempt_from_the_user_mapping_invariants_but_not_from_I2()
    {
        var k = WithGpuAndVm(Policy("6.9"), out _);
        Assert.Equal(Errno.None, k.VgicV2MapResources("vm1", Gicc));
        var vm = k.Vm("vm1");
        var leaf = vm.Stage2.Lookup(Gicc)!.Value;
        var found = new List<Violation>();
        Invariants.Invariants.CheckLeaf(k.View, vm, leaf, found);
        Assert.Empty(found);
        // The same leaf without the record that KVM made it: no memslot holds it (I4).
        Invariants.Invariants.CheckLeaf(k.View, vm with { IoRemaps = null }, leaf, found);
        Assert.Equal("I4", Assert.Single(found).Invariant);
        // A Normal-NC leaf there could only have come from a VMA's VM_ALLOW_ANY_UNCACHED, and there is none (I2).
        found.Clear();
        Assert.Equal(Errno.None, Stage2SetProtAttr.Compute(KvmPgtableProt.KVM_PGTABLE_PROT_NORMAL_NC | KvmPgtableProt.KVM_PGTABLE_PROT_R, RuleSet.V6_9, true, out var nc));
        Invariants.Invariants.CheckLeaf(k.View, vm, leaf with { Descriptor = Stage2Descriptor.Encode(leaf.Pfn, 3, nc) }, found);
        Assert.Equal("I2", Assert.Single(found).Invariant);
    }

    [Fact]
    public void Replay_re_decides_the_fetch_on_KVMs_own_mapping_under_another_kernel()
    {
        var k = WithGpuAndVm(Policy("6.9"), out _);
        Assert.Equal(Errno.None, k.VgicV2MapResources("vm1", Gicc));
        k.Access("vm1", 0, Gicc, AccessOp.Exec);
        var replay = new Replay(_ => Policy("6.17", fwb: false, dic: false), Policy("6.9"));
        foreach (var e in k.Log) replay.Apply(e.Seq, e.Stream, e.Event);
        Assert.Equal((1L, 0L), (replay.Decisions, replay.Mismatches));
        Assert.Empty(replay.Changes);
        Assert.Equal(Device(replay.Vms["vm1"], Gicc), Device(k.Vm("vm1"), Gicc));

        static MemType? Device(KvmVm vm, ulong gpa) =>
            vm.Stage2.Lookup(gpa) is { } l && MemAttr.TypeOf(l.MemAttr, true) is { } t ? MemAttr.MemTypeOf(t) : null;
    }
}
