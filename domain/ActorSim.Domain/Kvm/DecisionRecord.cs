using ActorSim.Domain.Kernel;
using ActorSim.Domain.Mm;

namespace ActorSim.Domain.Kvm;

/// <summary>Everything a stage-2 fault decision reads (kvm_handle_guest_abort + user_mem_abort).
/// Deciding again from these inputs reproduces the outcome bit for bit.</summary>
/// <param name="Gpa">Faulting IPA.</param>
/// <param name="FaultIsPerm">Permission fault on an existing leaf (else translation fault).</param>
/// <param name="FaultLevel">Level of the existing leaf for a permission fault (the fault granule).</param>
/// <param name="Slot">The memslot covering the gfn, or null.</param>
/// <param name="Hva">The faulting hva (slot translation), 0 without a slot.</param>
/// <param name="Vma">Snapshot of the VMA at hva taken under mmap_read_lock, or null (no VMA).</param>
/// <param name="PfnHva">The hva whose pfn was resolved: the start of the mapping block.</param>
/// <param name="Pfn">The pfn lookup for <paramref name="PfnHva"/>.</param>
/// <param name="SampledSeq">mmu_invalidate_seq sampled before the pfn lookup (step 6).</param>
/// <param name="SeqAtLock">mmu_invalidate_seq under mmu_lock (step 12).</param>
/// <param name="InProgressAtLock">mmu_invalidate_in_progress under mmu_lock.</param>
/// <param name="ExistingLeaf">The leaf covering the IPA under mmu_lock, if any.</param>
/// <param name="MemcacheTopUpFails">kvm_mmu_topup_memory_cache fails (out of memory).</param>
/// <param name="Nisv">A data abort with no valid instruction syndrome: ESR_ELx_ISV clear
/// (!kvm_vcpu_dabt_isvalid), as for the loads and stores the syndrome cannot describe — an atomic such
/// as cas, dc zva, a pre- or post-indexed ldr/str (page_fault_test: ld_preidx, st_preidx). Only
/// io_mem_abort reads it: it cannot emulate such an access. False for a plain load or store.</param>
/// <param name="S1ptw">ESR_ELx_S1PTW: the abort came from the stage-1 page-table walk for the access
/// (the guest's page tables are at this IPA). <see cref="Op"/> then says what the walker did: read the
/// tables, write them (a hardware AF/DBM update), or walk for an instruction fetch. It is a write fault
/// only as a permission fault (<see cref="KvmEmulate.IsWriteFault(FaultInputs)"/>), and with no
/// memslot or a read-only one KVM injects a data abort (kvm_handle_guest_abort).</param>
/// <param name="Cm">ESR_ELx_CM: a data cache maintenance instruction (dc civac, dc ivac, …); its
/// abort reports WnR set, so it is a write fault, and no valid syndrome. With no memslot KVM skips the
/// instruction (kvm_incr_pc).</param>
/// <param name="NisvToUser">The VM's KVM_ARCH_FLAG_RETURN_NISV_IO_ABORT_TO_USER: its VMM enabled
/// KVM_CAP_ARM_NISV_TO_USER, so io_mem_abort hands an access it cannot emulate (<see cref="Nisv"/>) to the
/// VMM as KVM_EXIT_ARM_NISV instead of failing KVM_RUN with -ENOSYS. Only io_mem_abort reads it.</param>
public sealed record FaultInputs(
    string Vm, int Vcpu, ulong Gpa, AccessOp Op, bool FaultIsPerm, int FaultLevel,
    Memslot? Slot, ulong Hva, VmaSnapshot? Vma, ulong PfnHva, PfnLookup Pfn,
    KernelPolicy Policy, bool VmHasMte, int IpaBits,
    ulong SampledSeq, ulong SeqAtLock, int InProgressAtLock,
    Stage2Leaf? ExistingLeaf, bool MemcacheTopUpFails = false, bool Nisv = false, bool S1ptw = false, bool Cm = false,
    bool NisvToUser = false);

/// <summary>What a guest access led to (scenario-format.md "Outcome of an access").</summary>
public enum FaultResult : byte
{
    /// <summary>A new leaf now maps the page (map walker installed or replaced it).</summary>
    Mapped,
    /// <summary>kvm_pgtable_stage2_relax_perms added permissions to the existing leaf.</summary>
    PermissionsRelaxed,
    /// <summary>The leaf was already there (no fault, or the map walker found only a permission
    /// difference and returned -EAGAIN → 0).</summary>
    AlreadyMapped,
    /// <summary>-EAGAIN from mmu_invalidate_retry: returned as 0, the guest faults again.</summary>
    Retry,
    /// <summary>-ENOEXEC turned into an injected instruction abort, or an injected abort for an IPA out
    /// of range.</summary>
    GuestAbort,
    /// <summary>No memslot or a write to a read-only slot: KVM_EXIT_MMIO.</summary>
    MmioExit,
    /// <summary>KVM_PFN_ERR_HWPOISON: SIGBUS to the VMM, guest resumes (return 0).</summary>
    HwPoisonSigbus,
    /// <summary>KVM_RUN returns the errno to the VMM.</summary>
    Error,
    /// <summary>A cache maintenance instruction outside every memslot: KVM skips it (kvm_incr_pc) and
    /// the guest goes on (return 1).</summary>
    InstructionSkipped,
    /// <summary>An access io_mem_abort cannot emulate (no valid syndrome) on a VM with
    /// KVM_CAP_ARM_NISV_TO_USER: KVM_EXIT_ARM_NISV, the VMM gets the fault IPA and the sanitized ISS
    /// (return 0).</summary>
    NisvExit,
}

/// <summary>Which rule of the ordered decision list ended the decision (for explain).</summary>
public enum DecisionPath : byte
{
    IpaOutOfRange,
    NoMemslotExec,
    NoMemslotMmio,
    /// <summary>A write fault on a read-only slot by an instruction abort: the permission fault of an
    /// instruction fetch's stage-1 walk (S1PTW). -ENOEXEC, an injected instruction abort.</summary>
    ReadOnlySlotWriteExec,
    ReadOnlySlotWriteMmio,
    UnexpectedL2ReadPermission,
    MemcacheTopUpFailed,
    NoVma,
    PfnHwPoison,
    PfnError,
    CacheablePfnmapUnsupported,
    ExecOnDevice,
    InvalidateRetry,
    MteNotAllowed,
    SetProtAttrRejected,
    RelaxPerms,
    SpuriousSameLeaf,
    MapLeaf,
    /// <summary>A leaf already let the access through: there was no stage-2 fault to decide.</summary>
    NoFault,
    /// <summary>No memslot, or a write to a read-only one, by a data abort without a valid syndrome:
    /// io_mem_abort cannot emulate it and KVM_RUN fails with -ENOSYS.</summary>
    NoValidSyndrome,
    /// <summary>No memslot, or a write fault on a read-only one, by a stage-1 page-table walk (S1PTW):
    /// the guest put its page tables where it should not, kvm_inject_dabt, return 1.</summary>
    S1ptwInjectDabt,
    /// <summary>A cache maintenance instruction with no memslot: skipped (kvm_incr_pc), return 1.</summary>
    CacheMaintenanceSkipped,
    /// <summary>No memslot, or a write to a read-only one, by a data abort without a valid syndrome on a
    /// VM with KVM_CAP_ARM_NISV_TO_USER: KVM_EXIT_ARM_NISV to the VMM.</summary>
    NisvExitToUser,
}

/// <summary>The outcome of one decision: result, errno (for Error), the leaf as it is afterwards (for
/// Mapped / PermissionsRelaxed / AlreadyMapped), the prot user_mem_abort built, and the rule that
/// decided.</summary>
public readonly record struct FaultOutcome(FaultResult Result, Errno Errno, Stage2Leaf? Leaf, Stage2.KvmPgtableProt Prot, DecisionPath Path)
{
    public override string ToString()
    {
        var s = $"{Result} via {Path}";
        if (Errno != Errno.None) s += $" (-{Errno})";
        if (Leaf is { } l) s += $" leaf gpa=0x{l.Gpa:x} L{l.Level} pfn=0x{l.Pfn:x} memattr=0x{l.MemAttr:x} desc=0x{l.Descriptor:x16}";
        return s;
    }
}

/// <summary>One stage-2 fault decision: its inputs and its outcome.</summary>
public sealed record DecisionRecord(FaultInputs Inputs, FaultOutcome Outcome)
{
    /// <summary>True when deciding again from the inputs gives this outcome.</summary>
    public bool Verifies() => KvmHandleGuestAbort.Decide(Inputs) == Outcome;
}
