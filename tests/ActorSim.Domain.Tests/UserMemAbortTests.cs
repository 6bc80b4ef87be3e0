using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Stage2;
using static ActorSim.Domain.Kernel.VmFlags;
using static ActorSim.Domain.Tests.TestHosts;

namespace ActorSim.Domain.Tests;

/// <summary>kernel-model.md §3.4: the memory type a successful non-exec fault produces, per VMA kind,
/// pfn kind and rule set, and the ordered error paths of §3.1–3.3.</summary>
public class UserMemAbortResultTableTests
{
    private const VmFlags Pfnmap = VM_READ | VM_WRITE | VM_SHARED | VM_MAYREAD | VM_MAYWRITE | VM_MAYSHARE | VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
    private const VmFlags Anon = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;

    // Columns: PRE (6.8), NC (6.9), CPFN with FWB+DIC, CPFN without FWB.
    // "EFAULT" = the fault fails; otherwise the stage-2 type.
    public static TheoryData<string, VmFlags, MairIndex, bool, string, string, string, string> Rows() => new()
    {
        { "any VMA, RAM pfn", Anon, MairIndex.MT_NORMAL, true, "Normal", "Normal", "Normal", "Normal" },
        { "RAM pfn in a VMA with the flag (O5)", Anon | VM_ALLOW_ANY_UNCACHED, MairIndex.MT_NORMAL, true, "Normal", "Normal", "Normal", "Normal" },
        { "PFNMAP, no flag, S1 Device", Pfnmap, MairIndex.MT_DEVICE_nGnRnE, false, "Device", "Device", "Device", "Device" },
        { "PFNMAP, no flag, S1 Normal-NC", Pfnmap, MairIndex.MT_NORMAL_NC, false, "Device", "Device", "Device", "Device" },
        { "PFNMAP + flag, S1 Device (VFIO BAR)", Pfnmap | VM_ALLOW_ANY_UNCACHED, MairIndex.MT_DEVICE_nGnRnE, false, "Device", "NormalNC", "NormalNC", "NormalNC" },
        { "PFNMAP + flag, S1 Normal-NC (nvgrace resmem)", Pfnmap | VM_ALLOW_ANY_UNCACHED, MairIndex.MT_NORMAL_NC, false, "Device", "NormalNC", "NormalNC", "NormalNC" },
        { "PFNMAP, S1 cacheable, no flag (nvgrace usemem)", Pfnmap, MairIndex.MT_NORMAL, false, "Device", "Device", "Normal", "EFAULT" },
        { "PFNMAP, S1 tagged cacheable, no flag", Pfnmap, MairIndex.MT_NORMAL_TAGGED, false, "Device", "Device", "Normal", "EFAULT" },
        { "PFNMAP, S1 cacheable, with flag", Pfnmap | VM_ALLOW_ANY_UNCACHED, MairIndex.MT_NORMAL, false, "Device", "NormalNC", "Normal", "EFAULT" },
        { "MIXEDMAP, S1 cacheable, device pfn", Anon | VM_MIXEDMAP, MairIndex.MT_NORMAL, false, "Device", "Device", "Normal", "EFAULT" },
        { "not PFNMAP/MIXEDMAP, device pfn, no flag", Anon, MairIndex.MT_DEVICE_nGnRnE, false, "Device", "Device", "Normal", "Normal" },
        { "not PFNMAP/MIXEDMAP, device pfn, flag", Anon | VM_ALLOW_ANY_UNCACHED, MairIndex.MT_DEVICE_nGnRnE, false, "Device", "NormalNC", "Normal", "Normal" },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void Memory_type_of_a_read_fault(string row, VmFlags flags, MairIndex s1, bool ram, string pre, string nc, string cpfn, string cpfnNoFwb)
    {
        _ = row;
        Check(Policy("6.8"), pre);
        Check(Policy("6.9"), nc);
        Check(Policy("6.17"), cpfn);
        Check(Policy("6.17", fwb: false), cpfnNoFwb);
        Check(Policy("6.17", dic: false), cpfnNoFwb);

        void Check(KernelPolicy p, string expected)
        {
            var o = KvmHandleGuestAbort.Decide(Inputs(p, flags, s1, ram));
            if (expected == "EFAULT")
            {
                Assert.Equal((FaultResult.Error, Errno.EFAULT, DecisionPath.CacheablePfnmapUnsupported), (o.Result, o.Errno, o.Path));
                return;
            }
            Assert.Equal(FaultResult.Mapped, o.Result);
            Assert.Equal(Enum.Parse<S2Type>(expected), MemAttr.TypeOf(o.Leaf!.Value.MemAttr, p.Cpu.Fwb));
        }
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public void Exec_fault_on_every_Device_or_NC_row_is_a_guest_abort(string row, VmFlags flags, MairIndex s1, bool ram, string pre, string nc, string cpfn, string cpfnNoFwb)
    {
        _ = row; _ = cpfnNoFwb;
        foreach (var (kernel, expected) in new[] { ("6.8", pre), ("6.9", nc), ("6.17", cpfn) })
        {
            var o = KvmHandleGuestAbort.Decide(Inputs(Policy(kernel), flags, s1, ram, AccessOp.Exec));
            if (expected == "Normal")
            {
                Assert.Equal(FaultResult.Mapped, o.Result);
                Assert.True(o.Leaf!.Value.Executable);
            }
            else
            {
                Assert.Equal((FaultResult.GuestAbort, Errno.ENOEXEC, DecisionPath.ExecOnDevice), (o.Result, o.Errno, o.Path));
            }
        }
    }
}

public class UserMemAbortPathTests
{
    private static readonly KernelPolicy Nc = Policy("6.9");
    private static FaultInputs Bar(AccessOp op = AccessOp.Read) =>
        Inputs(Nc, VfioBarFlags | VmFlags.VM_ALLOW_ANY_UNCACHED, MairIndex.MT_DEVICE_nGnRnE, false, op);

    private static FaultOutcome Decide(FaultInputs i) => KvmHandleGuestAbort.Decide(i);

    [Fact]
    public void IPA_beyond_the_VMs_IPA_size_injects_an_abort() =>
        Assert.Equal(DecisionPath.IpaOutOfRange, Decide(Bar() with { Gpa = 1UL << 40 }).Path);

    [Theory]
    [InlineData(AccessOp.Read, FaultResult.MmioExit, Errno.None)]
    [InlineData(AccessOp.Write, FaultResult.MmioExit, Errno.None)]
    [InlineData(AccessOp.Exec, FaultResult.GuestAbort, Errno.ENOEXEC)]
    public void No_memslot_exits_to_the_VMM_or_aborts_an_instruction_fetch(AccessOp op, FaultResult r, Errno e)
    {
        var o = Decide(Bar(op) with { Slot = null });
        Assert.Equal((r, e), (o.Result, o.Errno));
    }

    [Fact]
    public void Write_to_a_read_only_slot_is_an_MMIO_exit_and_a_read_maps_read_only()
    {
        var ro = Bar(AccessOp.Write) with { Slot = Bar().Slot! with { Flags = MemslotFlags.KVM_MEM_READONLY } };
        Assert.Equal(FaultResult.MmioExit, Decide(ro).Result);
        var read = Decide(ro with { Op = AccessOp.Read });
        Assert.Equal(FaultResult.Mapped, read.Result);
        Assert.False(read.Leaf!.Value.Writable);
    }

    // io_mem_abort (arch/arm64/kvm/mmio.c) without a valid syndrome, and page_fault_test's read-only
    // slot (kernel-model.md §6): cas, dc_zva, st_preidx fail KVM_RUN with ENOSYS; ld_preidx maps.
    [Theory]
    [InlineData(AccessOp.Read)]
    [InlineData(AccessOp.Write)]
    public void No_memslot_without_a_valid_syndrome_is_ENOSYS(AccessOp op)
    {
        var o = Decide(Bar(op) with { Slot = null, Nisv = true });
        Assert.Equal((FaultResult.Error, Errno.ENOSYS, DecisionPath.NoValidSyndrome), (o.Result, o.Errno, o.Path));
    }

    [Fact]
    public void An_instruction_abort_is_injected_before_the_syndrome_is_read()
    {
        var o = Decide(Bar(AccessOp.Exec) with { Slot = null, Nisv = true });
        Assert.Equal((FaultResult.GuestAbort, Errno.ENOEXEC, DecisionPath.NoMemslotExec), (o.Result, o.Errno, o.Path));
    }

    [Fact]
    public void Read_only_slot_without_a_valid_syndrome_fails_a_write_and_maps_a_read()
    {
        var ro = Bar(AccessOp.Write) with { Slot = Bar().Slot! with { Flags = MemslotFlags.KVM_MEM_READONLY }, Nisv = true };
        var write = Decide(ro);
        Assert.Equal((FaultResult.Error, Errno.ENOSYS, DecisionPath.NoValidSyndrome), (write.Result, write.Errno, write.Path));
        // A permission fault on the read-only leaf reaches io_mem_abort the same way.
        Assert.Equal(Errno.ENOSYS, Decide(ro with { FaultIsPerm = true }).Errno);
        var read = Decide(ro with { Op = AccessOp.Read });
        Assert.Equal(FaultResult.Mapped, read.Result);
        Assert.False(read.Leaf!.Value.Writable);
    }

    [Fact]
    public void A_store_without_a_valid_syndrome_maps_a_writable_slot_as_any_store() =>
        Assert.Equal(Decide(Bar(AccessOp.Write)), Decide(Bar(AccessOp.Write) with { Nisv = true }));

    [Fact]
    public void A_read_permission_fault_is_EFAULT() =>
        Assert.Equal((Errno.EFAULT, DecisionPath.UnexpectedL2ReadPermission), (Decide(Bar() with { FaultIsPerm = true }).Errno, Decide(Bar() with { FaultIsPerm = true }).Path));

    [Fact]
    public void A_failed_memcache_top_up_is_ENOMEM() =>
        Assert.Equal(Errno.ENOMEM, Decide(Bar() with { MemcacheTopUpFails = true }).Errno);

    [Fact]
    public void No_VMA_is_EFAULT() =>
        Assert.Equal((Errno.EFAULT, DecisionPath.NoVma), (Decide(Bar() with { Vma = null }).Errno, Decide(Bar() with { Vma = null }).Path));

    [Theory]
    [InlineData(PfnStatus.NoVma)]
    [InlineData(PfnStatus.AccessDenied)]
    [InlineData(PfnStatus.Sigbus)]
    public void A_pfn_error_is_EFAULT(PfnStatus status) =>
        Assert.Equal((FaultResult.Error, Errno.EFAULT, DecisionPath.PfnError), (Decide(Bar() with { Pfn = PfnLookup.Failed(status) }).Result, Decide(Bar() with { Pfn = PfnLookup.Failed(status) }).Errno, Decide(Bar() with { Pfn = PfnLookup.Failed(status) }).Path));

    [Fact]
    public void HWPOISON_sends_SIGBUS_and_resumes_the_guest() =>
        Assert.Equal(FaultResult.HwPoisonSigbus, Decide(Bar() with { Pfn = PfnLookup.Failed(PfnStatus.HwPoison) }).Result);

    [Theory]
    [InlineData(6UL, 5UL, 0)]
    [InlineData(5UL, 5UL, 1)]
    public void An_invalidation_since_the_sample_makes_the_fault_retry(ulong seqAtLock, ulong sampled, int inProgress)
    {
        var o = Decide(Bar() with { SeqAtLock = seqAtLock, SampledSeq = sampled, InProgressAtLock = inProgress });
        Assert.Equal((FaultResult.Retry, DecisionPath.InvalidateRetry), (o.Result, o.Path));
    }

    [Fact]
    public void Exec_on_device_is_decided_before_the_retry_check()
    {
        var o = Decide(Bar(AccessOp.Exec) with { SeqAtLock = 9 });
        Assert.Equal(DecisionPath.ExecOnDevice, o.Path);
    }

    [Fact]
    public void MTE_VM_refuses_cacheable_memory_from_a_VMA_without_VM_MTE_ALLOWED()
    {
        var ram = Inputs(Nc, VmFlags.VM_READ | VmFlags.VM_WRITE, MairIndex.MT_NORMAL, true) with { VmHasMte = true };
        Assert.Equal(DecisionPath.MteNotAllowed, Decide(ram).Path);
        Assert.Equal(FaultResult.Mapped, Decide(ram with { Vma = ram.Vma!.Value with { Flags = ram.Vma.Value.Flags | VmFlags.VM_MTE_ALLOWED } }).Result);
        Assert.Equal(FaultResult.Mapped, Decide(Bar() with { VmHasMte = true }).Result); // device memory: no MTE check
    }

    [Fact]
    public void Write_fault_maps_writable_when_the_user_PTE_is_writable()
    {
        Assert.True(Decide(Bar(AccessOp.Write)).Leaf!.Value.Writable);
        Assert.True(Decide(Bar(AccessOp.Read)).Leaf!.Value.Writable);
        Assert.False(Decide(Bar(AccessOp.Read) with { Pfn = Bar().Pfn with { Writable = false } }).Leaf!.Value.Writable);
    }

    [Fact]
    public void Dirty_logging_maps_RAM_read_faults_read_only_and_forces_pages()
    {
        var i = Inputs(Nc, VmFlags.VM_READ | VmFlags.VM_WRITE, MairIndex.MT_NORMAL, true, slotFlags: MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES);
        var o = Decide(i);
        Assert.False(o.Leaf!.Value.Writable);
        Assert.Equal(3, o.Leaf.Value.Level);
        Assert.True(Decide(i with { Op = AccessOp.Write }).Leaf!.Value.Writable);
    }

    [Fact]
    public void RAM_gets_X_proactively_with_DIC_and_only_on_exec_without()
    {
        var ram = Inputs(Nc, VmFlags.VM_READ | VmFlags.VM_WRITE, MairIndex.MT_NORMAL, true);
        Assert.True(Decide(ram).Leaf!.Value.Executable);
        var noDic = ram with { Policy = Policy("6.9", dic: false) };
        Assert.False(Decide(noDic).Leaf!.Value.Executable);
        Assert.True(Decide(noDic with { Op = AccessOp.Exec }).Leaf!.Value.Executable);
    }

    [Fact]
    public void A_2MiB_aligned_BAR_in_an_aligned_slot_maps_a_PMD_block()
    {
        const ulong hva = 0x7f00_0000_0000UL;
        var slot = new Memslot(1, BarGpa, 16 * MiB, hva, MemslotFlags.None);
        var vma = new VmaSnapshot(hva, hva + 16 * MiB, VfioBarFlags | VmFlags.VM_ALLOW_ANY_UNCACHED, PhysMap.PciMmioBase >> 12, MairIndex.MT_DEVICE_nGnRnE);
        var gpa = BarGpa + 3 * MiB + 0x5000;
        var pfnHva = UserMemAbort.PfnHva(vma, gpa, slot);
        Assert.Equal(hva + 2 * MiB, pfnHva);
        var i = new FaultInputs("vm1", 0, gpa, AccessOp.Read, false, 3, slot, slot.GpaToHva(gpa), vma, pfnHva,
            PfnLookup.Of((PhysMap.PciMmioBase + 2 * MiB) >> 12, true), Nc, false, 40, 0, 0, 0, null);
        var leaf = Decide(i).Leaf!.Value;
        Assert.Equal((2, BarGpa + 2 * MiB), (leaf.Level, leaf.Gpa));
    }

    [Fact]
    public void A_slot_whose_gpa_and_hva_disagree_mod_2MiB_falls_back_to_pages()
    {
        const ulong hva = 0x7f00_0000_0000UL;
        var slot = new Memslot(1, BarGpa + 0x1000, 16 * MiB, hva, MemslotFlags.None);
        var vma = new VmaSnapshot(hva, hva + 16 * MiB, VfioBarFlags, PhysMap.PciMmioBase >> 12, MairIndex.MT_DEVICE_nGnRnE);
        Assert.Equal((PageGeometry.PageSize, true), UserMemAbort.MappingSize(vma, hva + 4 * MiB, slot));
    }

    [Fact]
    public void A_1GiB_aligned_PFNMAP_VMA_maps_a_PUD_block()
    {
        const ulong hva = 0x7e00_0000_0000UL;
        var slot = new Memslot(1, 0x80_0000_0000UL, 2 * GiB, hva, MemslotFlags.None);
        var vma = new VmaSnapshot(hva, hva + 2 * GiB, VfioBarFlags, PhysMap.PciMmioBase >> 12, MairIndex.MT_DEVICE_nGnRnE);
        Assert.Equal((PageGeometry.PudSize, false), UserMemAbort.MappingSize(vma, hva + GiB + 0x1000, slot));
    }

    [Fact]
    public void Same_leaf_with_other_permissions_is_left_alone()
    {
        var first = Decide(Bar());
        var again = Decide(Bar() with { ExistingLeaf = first.Leaf!.Value with { Descriptor = first.Leaf.Value.Descriptor & ~Stage2Descriptor.S2apW } });
        Assert.Equal((FaultResult.AlreadyMapped, DecisionPath.SpuriousSameLeaf), (again.Result, again.Path));
    }

    [Fact]
    public void Write_permission_fault_relaxes_the_leaf_and_keeps_its_memory_type()
    {
        var ro = Decide(Bar() with { Pfn = Bar().Pfn with { Writable = false } }).Leaf!.Value;
        var o = Decide(Bar(AccessOp.Write) with { FaultIsPerm = true, FaultLevel = 3, ExistingLeaf = ro });
        Assert.Equal(FaultResult.PermissionsRelaxed, o.Result);
        Assert.True(o.Leaf!.Value.Writable);
        Assert.Equal(ro.MemAttr, o.Leaf.Value.MemAttr);
    }

    [Fact]
    public void Every_decision_reproduces_from_its_inputs()
    {
        foreach (var op in Enum.GetValues<AccessOp>())
            Assert.True(new DecisionRecord(Bar(op), Decide(Bar(op))).Verifies());
        Assert.False(new DecisionRecord(Bar(), Decide(Bar(AccessOp.Exec))).Verifies());
    }
}

public class GetVmaPageShiftTests
{
    private const ulong Hva = 0x7f00_0000_0000UL;

    [Theory]
    [InlineData(0x0UL, 16UL << 20, 21)]            // aligned 16 MiB VMA, pa agrees: PMD
    [InlineData(0x1000UL, 16UL << 20, 12)]         // pa disagrees mod 2 MiB: page
    [InlineData(0x0UL, 1UL << 20, 12)]             // 1 MiB VMA, hva inside the first 2 MiB but not aligned: page
    public void Pfnmap_vm_pgoff_heuristic(ulong pgoffBytes, ulong vmaSize, int shift)
    {
        var vma = new VmaSnapshot(Hva, Hva + vmaSize, VmFlags.VM_PFNMAP, pgoffBytes >> 12, MairIndex.MT_DEVICE_nGnRnE);
        Assert.Equal(shift, UserMemAbort.GetVmaPageShift(vma, Hva + 0x3000));
    }

    [Fact]
    public void An_aligned_hva_passes_the_end_check_even_when_the_block_runs_past_vm_end()
    {
        // Kernel text: ALIGN(hva, PMD_SIZE) <= vma->vm_end; ALIGN of an aligned hva is the hva itself.
        const ulong start = Hva + (2UL << 20);
        var vma = new VmaSnapshot(start, start + (1UL << 20), VmFlags.VM_PFNMAP, 0, MairIndex.MT_DEVICE_nGnRnE);
        Assert.Equal(21, UserMemAbort.GetVmaPageShift(vma, start));
        Assert.Equal(12, UserMemAbort.GetVmaPageShift(vma, start + 0x1000));
    }

    [Fact]
    public void Non_PFNMAP_VMAs_use_pages() =>
        Assert.Equal(12, UserMemAbort.GetVmaPageShift(new VmaSnapshot(Hva, Hva + (1UL << 30), VmFlags.VM_READ, 0, MairIndex.MT_NORMAL), Hva));
}
