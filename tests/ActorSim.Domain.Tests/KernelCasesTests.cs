using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Stage2;
using ActorSim.Domain.Vfio;
using static ActorSim.Domain.Tests.TestHosts;

namespace ActorSim.Domain.Tests;

/// <summary>kernel-model.md §6, cases O1–O16, run through the composed deciders.</summary>
public class KernelCasesTests
{
    private const ulong Page = BarGpa + 0x1000;

    private static void NoViolations(Simulation.SyncKernel k) => Assert.Empty(k.CheckInvariants());

    [Fact]
    public void O1_NC_kernel_VFIO_BAR_read_fault_maps_Normal_NC_XN_writable_from_the_PTE()
    {
        var k = WithMappedBar(Policy("6.9"), out _);
        var r = k.Access("vm1", 0, Page, AccessOp.Read);
        var leaf = r.Outcome.Leaf!.Value;
        Assert.Equal(FaultResult.Mapped, r.Outcome.Result);
        Assert.Equal(MemAttr.MT_S2_FWB_NORMAL_NC, leaf.MemAttr);
        Assert.False(leaf.Executable);
        Assert.True(leaf.Readable);
        Assert.True(leaf.Writable);
        NoViolations(k);
    }

    [Fact]
    public void O1_without_FWB_the_Normal_NC_code_is_0x5()
    {
        var k = WithMappedBar(Policy("6.9", fwb: false), out _);
        Assert.Equal(0x5, k.Access("vm1", 0, Page, AccessOp.Read).Outcome.Leaf!.Value.MemAttr);
    }

    [Fact]
    public void O2_PRE_kernel_same_access_maps_Device_nGnRE()
    {
        var k = WithMappedBar(Policy("6.8"), out _);
        Assert.Equal(MemAttr.MT_S2_DEVICE_nGnRE, k.Access("vm1", 0, Page, AccessOp.Read).Outcome.Leaf!.Value.MemAttr);
        NoViolations(k);
    }

    [Theory]
    [InlineData("6.8")]
    [InlineData("6.9")]
    [InlineData("6.17")]
    public void O3_instruction_fetch_from_the_BAR_injects_an_abort_and_maps_nothing(string kernel)
    {
        var k = WithMappedBar(Policy(kernel), out _);
        var r = k.Access("vm1", 0, Page, AccessOp.Exec);
        Assert.Equal((FaultResult.GuestAbort, Errno.ENOEXEC), (r.Outcome.Result, r.Outcome.Errno));
        Assert.Null(k.Vm("vm1").Stage2.Lookup(Page));
    }

    [Theory]
    [InlineData("6.8")]
    [InlineData("6.9")]
    [InlineData("6.17")]
    public void O4_a_PFNMAP_VMA_without_the_flag_maps_Device_in_every_version(string kernel)
    {
        var k = new Simulation.SyncKernel(Policy(kernel));
        k.AddDevice(Platform());
        k.AddVm(KvmVm.Create("vm1"));
        Assert.Equal(Errno.None, k.MmapDevice("plat0", 0, 0, 0x10000, true, Prot.Read | Prot.Write, null, out var hva));
        Assert.Equal(Errno.None, k.SetMemslot("vm1", 1, MemslotFlags.None, BarGpa, 0x10000, hva));
        Assert.Equal(MemAttr.MT_S2_DEVICE_nGnRE, k.Access("vm1", 0, Page, AccessOp.Read).Outcome.Leaf!.Value.MemAttr);
        NoViolations(k);
    }

    [Fact]
    public void O5_RAM_maps_Normal_whatever_the_VMA_flags()
    {
        var k = WithGpuAndVm(Policy("6.9"), out _);
        var leaf = k.Access("vm1", 0, RamGpa + 0x5000, AccessOp.Read).Outcome.Leaf!.Value;
        Assert.Equal(MemAttr.MT_S2_FWB_NORMAL, leaf.MemAttr);
        NoViolations(k);
    }

    [Fact]
    public void O6_memory_disable_removes_the_mapping_and_the_next_access_fails_EFAULT_until_enabled()
    {
        var k = WithMappedBar(Policy("6.9"), out _);
        k.Access("vm1", 0, Page, AccessOp.Read);
        Assert.Equal(Errno.None, k.SetDeviceMemory("gpu0", false));
        Assert.Null(k.Vm("vm1").Stage2.Lookup(Page));
        NoViolations(k);
        var r = k.Access("vm1", 0, Page, AccessOp.Read);
        Assert.Equal((FaultResult.Error, Errno.EFAULT), (r.Outcome.Result, r.Outcome.Errno));
        Assert.Equal(PfnStatus.Sigbus, r.Decision!.Inputs.Pfn.Status);
        Assert.Equal(Errno.None, k.SetDeviceMemory("gpu0", true));
        Assert.Equal(FaultResult.Mapped, k.Access("vm1", 0, Page, AccessOp.Read).Outcome.Result);
        NoViolations(k);
    }

    [Fact]
    public void O6_reset_zaps_and_the_next_access_maps_again()
    {
        var k = WithMappedBar(Policy("6.9"), out _);
        k.Access("vm1", 0, Page, AccessOp.Read);
        Assert.Equal(Errno.None, k.ResetDevice("gpu0"));
        Assert.Null(k.Vm("vm1").Stage2.Lookup(Page));
        Assert.Equal(FaultResult.Mapped, k.Access("vm1", 0, Page, AccessOp.Read).Outcome.Result);
        NoViolations(k);
    }

    [Fact]
    public void O6_entering_D3hot_zaps_and_faults_SIGBUS()
    {
        var k = WithMappedBar(Policy("6.17"), out _);
        k.Access("vm1", 0, Page, AccessOp.Read);
        Assert.Equal(Errno.None, k.SetPowerState("gpu0", PciPowerState.D3Hot));
        Assert.Null(k.Vm("vm1").Stage2.Lookup(Page));
        Assert.Equal(Errno.EFAULT, k.Access("vm1", 0, Page, AccessOp.Read).Outcome.Errno);
        NoViolations(k);
    }

    [Fact]
    public void O7_munmap_between_the_VMA_sample_and_mmu_lock_retries_and_the_refault_sees_no_VMA()
    {
        var k = WithMappedBar(Policy("6.9"), out var hva);
        var vm = k.Vm("vm1");
        var start = KvmFaultPath.Begin(vm, 0, Page, AccessOp.Read);
        var answer = k.ResolvePfn(start);                 // VMA and pfn sampled
        Assert.Equal(Errno.None, k.Munmap(hva, 16 * MiB)); // munmap runs the notifier
        var record = KvmFaultPath.Complete(k.Vm("vm1"), k.Policy, start, answer);
        Assert.Equal(FaultResult.Retry, record.Outcome.Result);
        var again = k.Access("vm1", 0, Page, AccessOp.Read);
        Assert.Equal((Errno.EFAULT, DecisionPath.NoVma), (again.Outcome.Errno, again.Outcome.Path));
        NoViolations(k);
    }

    [Fact]
    public void O8_dirty_logging_over_a_PFNMAP_VMA_is_refused()
    {
        var k = WithGpuAndVm(Policy("6.9"), out _);
        Assert.Equal(Errno.None, k.MmapDevice("gpu0", 0, 0, 16 * MiB, true, Prot.Read | Prot.Write, null, out var hva));
        Assert.Equal(Errno.EINVAL, k.SetMemslot("vm1", 1, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES, BarGpa, 16 * MiB, hva));
        Assert.Equal(Errno.None, k.SetMemslot("vm1", 1, MemslotFlags.None, BarGpa, 16 * MiB, hva));
        Assert.Equal(Errno.EINVAL, k.SetMemslot("vm1", 1, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES, BarGpa, 16 * MiB, hva)); // FLAGS_ONLY
    }

    private static Simulation.SyncKernel Grace(KernelPolicy p)
    {
        var k = new Simulation.SyncKernel(p);
        k.AddDevice(Nvgrace());
        k.AddVm(KvmVm.Create("vm1"));
        return k;
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(false, false)]
    public void O9_cacheable_PFNMAP_without_FWB_or_DIC_refuses_the_memslot_and_faults_EFAULT(bool fwb, bool dic)
    {
        var k = Grace(Policy("6.17", fwb, dic));
        Assert.Equal(Errno.None, k.MmapDevice("gh0", VfioRegionIndex.NvgraceUsemem, 0, 64 * MiB, true, Prot.Read | Prot.Write, null, out var hva));
        Assert.Equal(Errno.EINVAL, k.SetMemslot("vm1", 1, MemslotFlags.None, BarGpa, 64 * MiB, hva));
        // The VMA appears after the memslot: the fault itself fails.
        Assert.Equal(Errno.None, k.SetMemslot("vm1", 2, MemslotFlags.None, 0x90_0000_0000UL, 64 * MiB, 0x5000_0000_0000));
        Assert.Equal(Errno.None, k.MmapDevice("gh0", VfioRegionIndex.NvgraceUsemem, 0, 64 * MiB, true, Prot.Read | Prot.Write, 0x5000_0000_0000, out _));
        var r = k.Access("vm1", 0, 0x90_0000_0000UL, AccessOp.Read);
        Assert.Equal((Errno.EFAULT, DecisionPath.CacheablePfnmapUnsupported), (r.Outcome.Errno, r.Outcome.Path));
        NoViolations(k);
    }

    [Fact]
    public void O10_cacheable_PFNMAP_with_FWB_and_DIC_maps_Normal_WB_and_allows_exec()
    {
        var k = Grace(Policy("6.17"));
        Assert.Equal(Errno.None, k.MmapDevice("gh0", VfioRegionIndex.NvgraceUsemem, 0, 64 * MiB, true, Prot.Read | Prot.Write, null, out var hva));
        Assert.Equal(Errno.None, k.SetMemslot("vm1", 1, MemslotFlags.None, BarGpa, 64 * MiB, hva));
        var leaf = k.Access("vm1", 0, Page, AccessOp.Read).Outcome.Leaf!.Value;
        Assert.Equal(MemAttr.MT_S2_FWB_NORMAL, leaf.MemAttr);
        Assert.True(leaf.Executable); // X proactively with DIC
        Assert.Equal(FaultResult.AlreadyMapped, k.Access("vm1", 0, Page, AccessOp.Exec).Outcome.Result);
        NoViolations(k);
    }

    [Fact]
    public void O11_set_prot_attr_rejects_device_plus_nc_device_plus_x_and_nc_plus_x()
    {
        const KvmPgtableProt r = KvmPgtableProt.KVM_PGTABLE_PROT_R;
        foreach (var p in new[]
                 {
                     r | KvmPgtableProt.KVM_PGTABLE_PROT_DEVICE | KvmPgtableProt.KVM_PGTABLE_PROT_NORMAL_NC,
                     r | KvmPgtableProt.KVM_PGTABLE_PROT_DEVICE | KvmPgtableProt.KVM_PGTABLE_PROT_X,
                     r | KvmPgtableProt.KVM_PGTABLE_PROT_NORMAL_NC | KvmPgtableProt.KVM_PGTABLE_PROT_X,
                 })
            Assert.Equal(Errno.EINVAL, Stage2SetProtAttr.Compute(p, RuleSet.V6_9, true, out _));
    }

    [Fact]
    public void O12_guest_Normal_WB_over_S2_Normal_NC_is_Normal_NC_and_guest_Device_stays_Device()
    {
        var k = WithMappedBar(Policy("6.9"), out _);
        var code = k.Access("vm1", 0, Page, AccessOp.Read).Outcome.Leaf!.Value.MemAttr;
        Assert.Equal(MemType.NormalNC, CombineStages.Combine(MemType.NormalWB, code, true));
        Assert.Equal(MemType.DeviceNGnRE, CombineStages.Combine(MemType.DeviceNGnRE, code, true));
    }

    [Fact]
    public void O13_guest_Device_nGnRnE_over_FWB_Normal_is_Normal_WB() =>
        Assert.Equal(MemType.NormalWB, CombineStages.Combine(MemType.DeviceNGnRnE, MemAttr.MT_S2_FWB_NORMAL, true));

    [Fact]
    public void O14_write_permission_fault_on_a_read_only_NC_leaf_relaxes_W_and_keeps_MemAttr()
    {
        var k = WithMappedBar(Policy("6.9"), out var hva);
        Assert.Equal(Errno.None, k.Mprotect(hva, 16 * MiB, Prot.Read));
        var read = k.Access("vm1", 0, Page, AccessOp.Read);
        var ro = read.Outcome.Leaf!.Value;
        Assert.False(ro.Writable);
        // The write that follows once the user PTE is writable again: a permission fault on the leaf.
        var write = read.Decision!.Inputs with
        {
            Op = AccessOp.Write, FaultIsPerm = true, FaultLevel = ro.Level, ExistingLeaf = ro,
            Pfn = read.Decision.Inputs.Pfn with { Writable = true },
        };
        var o = KvmHandleGuestAbort.Decide(write);
        Assert.Equal((FaultResult.PermissionsRelaxed, DecisionPath.RelaxPerms), (o.Result, o.Path));
        Assert.True(o.Leaf!.Value.Writable);
        Assert.Equal(ro.MemAttr, o.Leaf.Value.MemAttr);
        Assert.Equal(ro.Pfn, o.Leaf.Value.Pfn);
        // In the composed host the mprotect back to read-write drops the leaf, and the write maps anew.
        Assert.Equal(Errno.None, k.Mprotect(hva, 16 * MiB, Prot.Read | Prot.Write));
        Assert.Null(k.Vm("vm1").Stage2.Lookup(Page));
        Assert.True(k.Access("vm1", 0, Page, AccessOp.Write).Outcome.Leaf!.Value.Writable);
        NoViolations(k);
    }

    [Fact]
    public void O15_private_ROM_config_IO_and_past_the_end_mmaps_are_EINVAL()
    {
        var k = new Simulation.SyncKernel(Policy("6.9"));
        k.AddDevice(Gpu());
        Assert.Equal(Errno.EINVAL, k.MmapDevice("gpu0", 0, 0, 0x1000, false, Prot.Read, null, out _));
        Assert.Equal(Errno.EINVAL, k.MmapDevice("gpu0", 6, 0, 0x1000, true, Prot.Read, null, out _));
        Assert.Equal(Errno.EINVAL, k.MmapDevice("gpu0", 7, 0, 0x1000, true, Prot.Read, null, out _));
        Assert.Equal(Errno.EINVAL, k.MmapDevice("gpu0", 2, 0, 0x1000, true, Prot.Read, null, out _));
        Assert.Equal(Errno.EINVAL, k.MmapDevice("gpu0", 0, 0, 17 * MiB, true, Prot.Read, null, out _));
    }

    [Fact]
    public void O16_smaps_of_a_VFIO_BAR_VMA_on_64_bit_6_9_shows_pf_io_de_dd_and_question_marks()
    {
        var k = WithMappedBar(Policy("6.9"), out var hva);
        var line = Smaps.VmFlagsLine(k.Mm.VmaLookup(hva)!.Flags);
        foreach (var m in new[] { "pf", "io", "de", "dd", "??" }) Assert.Contains(m + " ", line);
    }
}
