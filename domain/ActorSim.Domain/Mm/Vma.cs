using ActorSim.Domain.Kernel;

namespace ActorSim.Domain.Mm;

/// <summary>Who supplies the pfns of a VMA.</summary>
public enum BackingKind
{
    /// <summary>Anonymous memory (guest RAM): pages in the kernel's linear map, faulted in per page.</summary>
    Anonymous,
    /// <summary>A vfio-pci BAR: no PTEs at mmap, populated by vfio_pci_mmap_fault / huge_fault.</summary>
    VfioPci,
    /// <summary>remap_pfn_range at mmap time (nvgrace-gpu regions, vfio-platform MMIO); no fault
    /// handler, so a zapped page faults SIGBUS.</summary>
    PfnRange,
}

/// <summary>What backs a VMA: for device memory, the device and region, and the pfn of vm_start
/// (what vma_to_pfn computes; fixed at mmap).</summary>
public sealed record VmaBacking(BackingKind Kind, string? Device, int Region, ulong RegionOffset, ulong PfnAtStart)
{
    public static VmaBacking Anonymous(ulong pfnAtStart) => new(BackingKind.Anonymous, null, -1, 0, pfnAtStart);

    /// <summary>The backing of the part of a VMA that starts <paramref name="delta"/> bytes further in.</summary>
    public VmaBacking Advance(ulong delta) =>
        this with { RegionOffset = RegionOffset + delta, PfnAtStart = PfnAtStart + (delta >> PageGeometry.PageShift) };
}

/// <summary>A vm_area_struct: [Start, End), vm_flags, vm_pgoff, the stage-1 MAIR index of
/// vm_page_prot, its backing, and which of its pages have a present user PTE.</summary>
public sealed record Vma(ulong Start, ulong End, VmFlags Flags, ulong PgOff, MairIndex S1, VmaBacking Backing, PageRangeSet Ptes)
{
    public ulong Length => End - Start;
    public bool Contains(ulong hva) => hva >= Start && hva < End;
    public bool IsPfnMap => Flags.Has(VmFlags.VM_PFNMAP);
    public ulong PfnOf(ulong hva) => Backing.PfnAtStart + ((hva - Start) >> PageGeometry.PageShift);

    /// <summary>A user PTE is writable when the VMA is (shared mappings; change_protection keeps
    /// PTE write permission in step with VM_WRITE).</summary>
    public bool PteWritable => Flags.Has(VmFlags.VM_WRITE);

    public VmaSnapshot Snapshot() => new(Start, End, Flags, PgOff, S1);

    /// <summary>[from, to) of this VMA as a VMA of its own, as __split_vma leaves it: vm_pgoff and the
    /// backing advance with the start.</summary>
    public Vma Slice(ulong from, ulong to)
    {
        var delta = from - Start;
        return this with
        {
            Start = from,
            End = to,
            PgOff = PgOff + (delta >> PageGeometry.PageShift),
            Backing = Backing.Advance(delta),
            Ptes = Ptes.Clip(from, to),
        };
    }
}

/// <summary>What a decision reads of a VMA: range, flags, pgoff, stage-1 index.</summary>
public readonly record struct VmaSnapshot(ulong Start, ulong End, VmFlags Flags, ulong PgOff, MairIndex S1)
{
    public bool Contains(ulong hva) => hva >= Start && hva < End;
}
