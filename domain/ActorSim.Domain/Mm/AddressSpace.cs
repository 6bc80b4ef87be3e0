using System.Collections.Immutable;
using ActorSim.Domain.Kernel;

namespace ActorSim.Domain.Mm;

/// <summary>One process's mm: its VMAs in address order, and where the next anonymous pages come
/// from. Immutable; change it only by folding events through <see cref="AddressSpaceDecider.Evolve"/>.</summary>
public sealed record AddressSpace(ImmutableArray<Vma> Vmas, ulong NextRamPfn, WordSize WordSize)
{
    /// <summary>arm64 48-bit VA: TASK_SIZE.</summary>
    public const ulong TaskSize = 1UL << 48;
    /// <summary>Top-down placement starts below this address (scenario-format.md).</summary>
    public const ulong MmapBase = 0x7f00_0000_0000UL;
    /// <summary>vm.mmap_min_addr on Debian.</summary>
    public const ulong MmapMinAddr = 0x10000UL;

    public static AddressSpace Empty(WordSize wordSize = WordSize.Bits64) =>
        new(ImmutableArray<Vma>.Empty, PhysMap.RamStartPfn, wordSize);

    /// <summary>vma_lookup(mm, addr): the VMA containing addr, or null.</summary>
    public Vma? VmaLookup(ulong addr)
    {
        int lo = 0, hi = Vmas.Length - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            var v = Vmas[mid];
            if (addr < v.Start) hi = mid - 1;
            else if (addr >= v.End) lo = mid + 1;
            else return v;
        }
        return null;
    }

    /// <summary>VMAs intersecting [start, end), in address order (find_vma_intersection in a loop).</summary>
    public IEnumerable<Vma> VmasIntersecting(ulong start, ulong end) =>
        Vmas.Where(v => v.Start < end && start < v.End);

    public bool IsMapped(ulong start, ulong end) => VmasIntersecting(start, end).Any();
}
