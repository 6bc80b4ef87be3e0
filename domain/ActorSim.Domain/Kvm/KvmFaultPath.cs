using ActorSim.Domain.Kernel;
using ActorSim.Domain.Mm;

namespace ActorSim.Domain.Kvm;

/// <summary>What KVM knows when a guest access arrives, before asking mm: the leaf that covers the
/// IPA (if it lets the access through, there is no fault), the memslot, the hva, and the sampled
/// mmu_invalidate_seq. A struct: one per fault, kept inline in the KVM actor's batch and in its
/// request to mm (16 B a fault fewer in memory; AccessResult as a struct was more, BENCHMARKS.md).
/// <see cref="Syndrome"/>: the abort's syndrome bits beside the op (no valid syndrome, a stage-1 walk,
/// cache maintenance).</summary>
public readonly record struct FaultStart(
    string Vm, int Vcpu, ulong Gpa, AccessOp Op, Stage2Leaf? CoveringLeaf, Memslot? Slot, ulong Hva, ulong SampledSeq,
    AbortSyndrome Syndrome = AbortSyndrome.None)
{
    private bool S1ptw => Syndrome.HasFlag(AbortSyndrome.S1ptw);
    /// <summary>The access hits an existing leaf that permits it: no stage-2 fault at all.</summary>
    public bool NoFault => CoveringLeaf is { } l && l.Permits(KvmEmulate.Needs(Op, S1ptw));
    public bool FaultIsPerm => CoveringLeaf is not null;
    /// <summary>kvm_is_write_fault for this access.</summary>
    public bool WriteFault => KvmEmulate.IsWriteFault(Op, S1ptw, Syndrome.HasFlag(AbortSyndrome.Cm), FaultIsPerm);
    /// <summary>Does the decision need mm (a VMA snapshot and a pfn)? Not without a slot, nor for a
    /// write fault on a read-only slot, nor for an IPA out of range.</summary>
    public bool NeedsPfn(int ipaBits) =>
        !NoFault && Slot is not null && !(WriteFault && Slot.ReadOnly) && (ipaBits >= 64 || Gpa < 1UL << ipaBits);
}

/// <summary>mm's answer to KVM: the VMA at hva, the hva whose pfn was resolved, and the lookup.</summary>
public readonly record struct MmPfnAnswer(VmaSnapshot? Vma, ulong PfnHva, PfnLookup Pfn)
{
    public static MmPfnAnswer None => new(null, 0, PfnLookup.Failed(PfnStatus.NoVma));
}

/// <summary>The three phases of a stage-2 fault, as the KVM and mm actors run them: KVM samples,
/// mm resolves, KVM decides under mmu_lock. The synchronous kernel calls them back to back.</summary>
public static class KvmFaultPath
{
    public static FaultStart Begin(KvmVm vm, int vcpu, ulong gpa, AccessOp op, AbortSyndrome syndrome = AbortSyndrome.None)
    {
        var slot = vm.SlotFor(gpa);
        return new FaultStart(vm.Name, vcpu, gpa, op, vm.Stage2.Lookup(gpa), slot, slot?.GpaToHva(gpa) ?? 0, vm.MmuInvalidateSeq, syndrome);
    }

    /// <summary>mm side: vma_lookup at hva, the mapping size from that VMA and the memslot, then the
    /// pfn of the block-aligned hva (hva_to_pfn). May need the driver's fault handler first.</summary>
    public static FaultInStep ResolvePfn(AddressSpace mm, FaultStart f, out VmaSnapshot? vma, out ulong pfnHva)
    {
        var slot = f.Slot!;
        vma = mm.VmaLookup(f.Hva)?.Snapshot();
        pfnHva = UserMemAbort.PfnHva(vma, f.Gpa, slot);
        return AddressSpaceDecider.BeginFaultIn(mm, pfnHva, f.WriteFault); // __kvm_faultin_pfn(..., write_fault ? FOLL_WRITE : 0)
    }

    /// <summary>KVM side under mmu_lock: the inputs as they stand now, and the decision.</summary>
    public static DecisionRecord Complete(KvmVm vm, KernelPolicy policy, FaultStart f, MmPfnAnswer mm, bool memcacheTopUpFails = false)
    {
        var inputs = new FaultInputs(
            f.Vm, f.Vcpu, f.Gpa, f.Op, f.FaultIsPerm, f.CoveringLeaf?.Level ?? 3,
            f.Slot, f.Hva, mm.Vma, mm.PfnHva, mm.Pfn,
            policy, vm.HasMte, vm.IpaBits,
            f.SampledSeq, vm.MmuInvalidateSeq, vm.MmuInvalidateInProgress,
            vm.Stage2.Lookup(f.Gpa), memcacheTopUpFails,
            f.Syndrome.HasFlag(AbortSyndrome.Nisv), f.Syndrome.HasFlag(AbortSyndrome.S1ptw), f.Syndrome.HasFlag(AbortSyndrome.Cm),
            vm.NisvToUser);
        return new DecisionRecord(inputs, KvmHandleGuestAbort.Decide(inputs));
    }
}
