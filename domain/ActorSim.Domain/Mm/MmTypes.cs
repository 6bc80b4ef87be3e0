using ActorSim.Domain.Kernel;

namespace ActorSim.Domain.Mm;

/// <summary>mmap/mprotect PROT_* bits.</summary>
[Flags]
public enum Prot { None = 0, Read = 1, Write = 2, Exec = 4 }

/// <summary>Why an MMU-notifier range was invalidated (enum mmu_notifier_event).</summary>
public enum MmuNotifyEvent { Unmap, Clear, ProtectionVma }

/// <summary>How a pfn lookup for KVM ended (hva_to_pfn / hva_to_pfn_remapped).</summary>
public enum PfnStatus : byte
{
    Ok,
    /// <summary>No VMA at the hva (KVM_PFN_ERR_FAULT).</summary>
    NoVma,
    /// <summary>The VMA does not allow the access (vma_permits_fault / check_vma_flags, or a write
    /// to a read-only PTE): KVM_PFN_ERR_FAULT / KVM_PFN_ERR_RO_FAULT.</summary>
    AccessDenied,
    /// <summary>The driver's fault handler returned VM_FAULT_SIGBUS (memory disabled, low power, or
    /// no fault handler for a zapped remap_pfn_range mapping).</summary>
    Sigbus,
    /// <summary>KVM_PFN_ERR_HWPOISON.</summary>
    HwPoison,
}

/// <summary>What KVM learns from resolving a pfn: status, pfn, whether it is in the linear map, and
/// whether the user PTE is writable.</summary>
public readonly record struct PfnLookup(PfnStatus Status, ulong Pfn, bool IsMapMemory, bool Writable)
{
    public static PfnLookup Failed(PfnStatus status) => new(status, 0, false, false);
    public static PfnLookup Of(ulong pfn, bool writable) => new(PfnStatus.Ok, pfn, PhysMap.PfnIsMapMemory(pfn), writable);
}

/// <summary>The driver's answer to a fault on a PFNMAP VMA without a user PTE: SIGBUS, or the range
/// whose PTEs it installed.</summary>
public readonly record struct DriverFaultAnswer(bool Sigbus, ulong PopulateStart, ulong PopulateEnd)
{
    public static DriverFaultAnswer SigBus => new(true, 0, 0);
}

/// <summary>Events of the address space (mm). MMU-notifier start/end bracket every change that can
/// remove or downgrade user PTEs; KVM subscribes to them.</summary>
public sealed record VmaMapped(Vma Vma) : IDomainEvent;
public sealed record VmaRangeUnmapped(ulong Start, ulong End) : IDomainEvent;
public sealed record VmaProtectionChanged(ulong Start, ulong End, Prot Prot) : IDomainEvent;
public sealed record UserPtesPopulated(ulong Start, ulong End) : IDomainEvent;
/// <summary>A value (a struct): a pass over a batch makes one per populated page.</summary>
public readonly record struct PteRange(ulong Start, ulong End);
/// <summary>The PTEs one pass over fault batches populated, in order: the same as one
/// <see cref="UserPtesPopulated"/> per range, as one journal entry.</summary>
public sealed record UserPtesPopulatedBatch(PteRange[] Ranges) : IDomainEvent
{
    public bool Equals(UserPtesPopulatedBatch? other) => other is not null && Ranges.AsSpan().SequenceEqual(other.Ranges);
    public override int GetHashCode() => Ranges.Length;
}
public sealed record UserPtesZapped(ulong Start, ulong End) : IDomainEvent;
public sealed record MmuNotifierInvalidateRangeStart(ulong Start, ulong End, MmuNotifyEvent Event) : IDomainEvent;
public sealed record MmuNotifierInvalidateRangeEnd(ulong Start, ulong End, MmuNotifyEvent Event) : IDomainEvent;
