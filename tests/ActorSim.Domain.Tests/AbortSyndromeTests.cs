using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Simulation;
using static ActorSim.Domain.Tests.TestHosts;

namespace ActorSim.Domain.Tests;

/// <summary>The syndrome bits kvm_handle_guest_abort and user_mem_abort read beside the access (v6.12,
/// kernel-model.md §3.1 step 4): a stage-1 page-table walk's abort (S1PTW) and a cache maintenance
/// instruction's (CM), through the synchronous kernel, as a run decides them.</summary>
public class AbortSyndromeTests
{
    private const ulong FlashGpa = 0;              // slot 2: 64 MiB read-only, as QEMU's pflash with EFI's page tables
    private const ulong LoggedGpa = 4 * GiB;       // slot 3: 2 MiB with KVM_MEM_LOG_DIRTY_PAGES
    private const ulong NoSlotGpa = 3 * GiB;       // no memslot
    private const AbortSyndrome S1ptw = AbortSyndrome.S1ptw, Cm = AbortSyndrome.Cm | AbortSyndrome.Nisv;

    /// <summary>RAM in slot 0, gpu0's BAR in slot 1, a read-only slot and a dirty-logged one; DIC off, so
    /// only an exec fault makes a RAM leaf executable.</summary>
    private static SyncKernel Host()
    {
        var k = WithMappedBar(Policy("6.9", dic: false), out _);
        Assert.Equal(Errno.None, k.MmapRam(64 * MiB, null, out var flash));
        Assert.Equal(Errno.None, k.SetMemslot("vm1", 2, MemslotFlags.KVM_MEM_READONLY, FlashGpa, 64 * MiB, flash));
        Assert.Equal(Errno.None, k.MmapRam(2 * MiB, null, out var logged));
        Assert.Equal(Errno.None, k.SetMemslot("vm1", 3, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES, LoggedGpa, 2 * MiB, logged));
        return k;
    }

    private static FaultOutcome Access(SyncKernel k, ulong gpa, AccessOp op, AbortSyndrome s = AbortSyndrome.None)
    {
        var r = k.Access("vm1", 0, gpa, op, syndrome: s);
        if (r.Decision is { } d) Assert.True(d.Verifies(), d.ToString());
        return r.Outcome;
    }

    private static (FaultResult, Errno, DecisionPath) Of(FaultOutcome o) => (o.Result, o.Errno, o.Path);

    [Fact]
    public void A_walk_maps_page_tables_in_a_read_only_slot_and_its_AF_update_there_injects_a_data_abort()
    {
        var k = Host();
        // 406504c7b040: a translation fault on the walk is a read, so it is mapped (read-only).
        var walk = Access(k, FlashGpa + 0x1000, AccessOp.Read, S1ptw);
        Assert.Equal((FaultResult.Mapped, Errno.None, DecisionPath.MapLeaf), Of(walk));
        Assert.False(walk.Leaf!.Value.Writable);
        // The walker's AF/DBM update is a permission fault on that leaf, so a write fault on a read-only
        // slot: a data abort injected, where a store exits to the VMM.
        Assert.Equal((FaultResult.GuestAbort, Errno.None, DecisionPath.S1ptwInjectDabt), Of(Access(k, FlashGpa + 0x1000, AccessOp.Write, S1ptw)));
        Assert.Equal((FaultResult.MmioExit, Errno.None, DecisionPath.ReadOnlySlotWriteMmio), Of(Access(k, FlashGpa + 0x1000, AccessOp.Write)));
        // A walk that reads the tables again does not fault.
        Assert.Equal(DecisionPath.NoFault, Access(k, FlashGpa + 0x1000, AccessOp.Read, S1ptw).Path);
        Assert.Empty(k.CheckInvariants());
    }

    [Theory]
    [InlineData(AccessOp.Read, AbortSyndrome.S1ptw)]
    [InlineData(AccessOp.Write, AbortSyndrome.S1ptw)]
    [InlineData(AccessOp.Read, AbortSyndrome.S1ptw | AbortSyndrome.Nisv)] // the walk is looked at before io_mem_abort
    [InlineData(AccessOp.Read, AbortSyndrome.S1ptw | AbortSyndrome.Cm | AbortSyndrome.Nisv)] // and before cache maintenance
    public void A_walk_with_no_memslot_injects_a_data_abort(AccessOp op, AbortSyndrome s)
    {
        var k = Host();
        Assert.Equal((FaultResult.GuestAbort, Errno.None, DecisionPath.S1ptwInjectDabt), Of(Access(k, NoSlotGpa, op, s)));
        Assert.Equal((FaultResult.MmioExit, Errno.None, DecisionPath.NoMemslotMmio), Of(Access(k, NoSlotGpa, op)));
    }

    [Fact]
    public void An_instruction_fetchs_walk_is_an_instruction_abort_before_it_is_a_walk()
    {
        var k = Host();
        Assert.Equal((FaultResult.GuestAbort, Errno.ENOEXEC, DecisionPath.NoMemslotExec), Of(Access(k, NoSlotGpa, AccessOp.Exec, S1ptw)));
        // A fetch's walk updating AF on a read-only slot's leaf: a write fault there, an instruction abort.
        var read = k.Access("vm1", 0, FlashGpa + 0x3000, AccessOp.Read, syndrome: S1ptw).Decision!;
        var update = read.Inputs with { Op = AccessOp.Exec, FaultIsPerm = true, ExistingLeaf = read.Outcome.Leaf };
        Assert.Equal((FaultResult.GuestAbort, Errno.ENOEXEC, DecisionPath.ReadOnlySlotWriteExec), Of(KvmHandleGuestAbort.Decide(update)));
        Assert.Equal((FaultResult.GuestAbort, Errno.None, DecisionPath.S1ptwInjectDabt), Of(KvmHandleGuestAbort.Decide(update with { Op = AccessOp.Read })));
    }

    [Fact]
    public void An_instruction_fetchs_walk_is_no_exec_fault()
    {
        var k = Host();
        // kvm_vcpu_trap_is_exec_fault is false on a walk: RAM is mapped without exec, device memory is
        // mapped where a fetch is refused (-ENOEXEC).
        var ramWalk = Access(k, RamGpa, AccessOp.Exec, S1ptw);
        Assert.Equal(FaultResult.Mapped, ramWalk.Result);
        Assert.False(ramWalk.Leaf!.Value.Executable);
        // The walk reads the tables: a readable leaf lets it through, executable or not.
        Assert.Equal(DecisionPath.NoFault, Access(k, RamGpa, AccessOp.Exec, S1ptw).Path);
        Assert.True(Access(k, RamGpa + 0x20_0000, AccessOp.Exec).Leaf!.Value.Executable);
        Assert.Equal(FaultResult.Mapped, Access(k, BarGpa, AccessOp.Exec, S1ptw).Result);
        Assert.Equal((FaultResult.GuestAbort, Errno.ENOEXEC, DecisionPath.ExecOnDevice), Of(Access(k, BarGpa + 0x40_0000, AccessOp.Exec)));
        Assert.Empty(k.CheckInvariants());
    }

    [Fact]
    public void A_walks_AF_update_is_a_write_fault_and_its_read_is_not()
    {
        var k = Host();
        // Dirty logging maps a read fault read-only; the walker's update then relaxes it to writable.
        var read = Access(k, LoggedGpa, AccessOp.Read, S1ptw);
        Assert.False(read.Leaf!.Value.Writable);
        var update = Access(k, LoggedGpa, AccessOp.Write, S1ptw);
        Assert.Equal(FaultResult.PermissionsRelaxed, update.Result);
        Assert.True(update.Leaf!.Value.Writable);
        Assert.Empty(k.CheckInvariants());
    }

    [Theory]
    [InlineData(AccessOp.Read)]
    [InlineData(AccessOp.Write)]
    public void Cache_maintenance_outside_every_memslot_is_skipped(AccessOp op)
    {
        var k = Host();
        Assert.Equal((FaultResult.InstructionSkipped, Errno.None, DecisionPath.CacheMaintenanceSkipped), Of(Access(k, NoSlotGpa, op, Cm)));
        Assert.Equal((FaultResult.Error, Errno.ENOSYS, DecisionPath.NoValidSyndrome), Of(Access(k, NoSlotGpa, op, AbortSyndrome.Nisv)));
    }

    [Fact]
    public void Cache_maintenance_on_a_read_only_slot_is_ENOSYS_even_a_clean()
    {
        var k = Host();
        // WnR is set for cache maintenance, so a clean (a read) is a write fault; ISV is clear, so
        // io_mem_abort cannot emulate it.
        Assert.Equal((FaultResult.Error, Errno.ENOSYS, DecisionPath.NoValidSyndrome), Of(Access(k, FlashGpa + 0x2000, AccessOp.Read, Cm)));
        // Decided before user_mem_abort: mm was not asked to fault the page in.
        var hva = k.Vm("vm1").SlotFor(FlashGpa)!.GpaToHva(FlashGpa + 0x2000);
        Assert.False(k.Mm.VmaLookup(hva)!.Ptes.Contains(hva));
        Assert.Equal(FaultResult.Mapped, Access(k, FlashGpa + 0x2000, AccessOp.Read).Result);
        // Once the page is mapped, a clean is no fault at all.
        Assert.Equal(DecisionPath.NoFault, Access(k, FlashGpa + 0x2000, AccessOp.Read, Cm).Path);
    }

    [Fact]
    public void Cache_maintenance_in_a_memslot_is_a_write_fault()
    {
        var k = Host();
        var clean = Access(k, LoggedGpa, AccessOp.Read, Cm);
        Assert.Equal(FaultResult.Mapped, clean.Result);
        Assert.True(clean.Leaf!.Value.Writable);
        Assert.False(Access(k, LoggedGpa + 0x1000, AccessOp.Read).Leaf!.Value.Writable);
        Assert.Empty(k.CheckInvariants());
    }

    [Fact]
    public void Cache_maintenance_faults_the_page_in_for_write_and_a_walk_for_read()
    {
        var k = Host();
        // __kvm_faultin_pfn(..., write_fault ? FOLL_WRITE : 0): in a VMA mprotect()ed read-only, a write
        // fault cannot get the page (-EFAULT), a read fault can.
        var hva = k.Vm("vm1").SlotFor(RamGpa)!.GpaToHva(RamGpa);
        Assert.Equal(Errno.None, k.Mprotect(hva, 2 * MiB, Domain.Mm.Prot.Read));
        Assert.Equal((FaultResult.Error, Errno.EFAULT, DecisionPath.PfnError), Of(Access(k, RamGpa, AccessOp.Read, Cm)));
        Assert.Equal(FaultResult.Mapped, Access(k, RamGpa + 0x1000, AccessOp.Read, S1ptw).Result);
    }
}
