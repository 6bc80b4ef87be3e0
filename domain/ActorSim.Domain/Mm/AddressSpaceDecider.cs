using System.Buffers;
using System.Collections.Immutable;
using System.Runtime.InteropServices;
using ActorSim.Domain.Kernel;

namespace ActorSim.Domain.Mm;

/// <summary>A VMA to install: what the generic mmap path and the driver's mmap decided.</summary>
public sealed record VmaTemplate(ulong Length, VmFlags Flags, ulong PgOff, MairIndex S1, VmaBacking Backing, bool Prepopulated);

/// <summary>How a pfn lookup goes on: done, or the VMA's driver must handle a fault first.
/// <paramref name="Populated"/>: the user PTEs the fault populated, if any — the step's one possible
/// event, <see cref="UserPtesPopulated"/> (<see cref="Events"/>); a value, so a pass over many faults
/// collects the ranges without an event object per fault.</summary>
public readonly record struct FaultInStep(PfnLookup Lookup, Vma? Vma, Vma? NeedsDriverFault, PteRange? Populated = null)
{
    public bool Done => NeedsDriverFault is null;

    public IReadOnlyList<IDomainEvent> Events => Populated is { } r ? [new UserPtesPopulated(r.Start, r.End)] : [];
}

/// <summary>The mm as a decider: mmap/munmap/mprotect, VFIO zaps and KVM's pfn lookups.
/// Decide functions are pure; Evolve folds events.</summary>
public static class AddressSpaceDecider
{
    private const VmFlags Rwx = VmFlags.VM_READ | VmFlags.VM_WRITE | VmFlags.VM_EXEC;

    /// <summary>calc_vm_prot_bits | calc_vm_flag_bits | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC, plus
    /// VM_SHARED | VM_MAYSHARE for MAP_SHARED (the file is open read-write) and VM_ACCOUNT for a
    /// private writable anonymous mapping (accountable_mapping). On arm64 calc_vm_flag_bits adds
    /// VM_MTE_ALLOWED to a MAP_ANONYMOUS mapping when <paramref name="systemSupportsMte"/>
    /// (arch_calc_vm_flag_bits, arch/arm64/include/asm/mman.h: only anonymous memory is known to be
    /// backed by tag-capable RAM); a device's mapping never gets it.</summary>
    public static VmFlags CalcVmFlags(Prot prot, bool shared, bool anonymous, bool systemSupportsMte = false)
    {
        var f = ProtBits(prot) | VmFlags.VM_MAYREAD | VmFlags.VM_MAYWRITE | VmFlags.VM_MAYEXEC;
        if (shared) f |= VmFlags.VM_SHARED | VmFlags.VM_MAYSHARE;
        if (anonymous && !shared && prot.HasFlag(Prot.Write)) f |= VmFlags.VM_ACCOUNT;
        if (anonymous && systemSupportsMte) f |= VmFlags.VM_MTE_ALLOWED;
        return f;
    }

    public static VmFlags ProtBits(Prot prot) =>
        (prot.HasFlag(Prot.Read) ? VmFlags.VM_READ : 0) | (prot.HasFlag(Prot.Write) ? VmFlags.VM_WRITE : 0) |
        (prot.HasFlag(Prot.Exec) ? VmFlags.VM_EXEC : 0);

    /// <summary>The checks of the mmap syscall before the driver sees the VMA (ksys_mmap_pgoff /
    /// do_mmap): offset page aligned, length not 0, length not wrapping, pgoff + pages not wrapping,
    /// a MAP_FIXED address page aligned and inside TASK_SIZE.</summary>
    public static Errno CheckMmapArgs(ulong? fixedHva, ulong length, ulong offset)
    {
        if (!PageGeometry.IsPageAligned(offset)) return Errno.EINVAL;
        if (length == 0) return Errno.EINVAL;
        var len = PageGeometry.PageAlign(length);
        if (len == 0 || len > AddressSpace.TaskSize) return Errno.ENOMEM;
        var pgoff = offset >> PageGeometry.PageShift;
        if (pgoff + (len >> PageGeometry.PageShift) < pgoff) return Errno.EOVERFLOW;
        if (fixedHva is { } a && (!PageGeometry.IsPageAligned(a) || a + len > AddressSpace.TaskSize || a + len < a))
            return Errno.EINVAL;
        return Errno.None;
    }

    /// <summary>Installs a VMA: at <paramref name="fixedHva"/> (MAP_FIXED: whatever was there is unmapped
    /// first, with notifier) or placed top-down below <see cref="AddressSpace.MmapBase"/> at the highest
    /// free address aligned to the length rounded up to a power of two, capped at 1 GiB.</summary>
    public static Decision InstallVma(AddressSpace s, ulong? fixedHva, VmaTemplate t)
    {
        var len = PageGeometry.PageAlign(t.Length);
        var events = new List<IDomainEvent>();
        ulong start;
        if (fixedHva is { } a)
        {
            if (!PageGeometry.IsPageAligned(a) || a + len > AddressSpace.TaskSize) return Decision.Fail(Errno.EINVAL);
            start = a;
            if (s.IsMapped(start, start + len)) events.AddRange(UnmapEvents(s, start, start + len));
        }
        else if (GetUnmappedArea(s, len) is { } placed) start = placed;
        else return Decision.Fail(Errno.ENOMEM);

        // Anonymous memory takes fresh pfns from the simulated RAM; running out of it is ENOMEM, so a
        // RAM pfn never strays outside the linear map (where it would count as device memory).
        if (t.Backing.Kind == BackingKind.Anonymous && (s.NextRamPfn + (len >> PageGeometry.PageShift)) << PageGeometry.PageShift > PhysMap.RamEnd)
            return Decision.Fail(Errno.ENOMEM);
        var flags = VmFlagBits.Truncate(t.Flags, s.WordSize);
        var backing = t.Backing.Kind == BackingKind.Anonymous ? VmaBacking.Anonymous(s.NextRamPfn) : t.Backing;
        var ptes = t.Prepopulated ? PageRangeSet.Empty.Add(start, start + len) : PageRangeSet.Empty;
        events.Add(new VmaMapped(new Vma(start, start + len, flags, t.PgOff, t.S1, backing, ptes)));
        return Decision.Ok(events);
    }

    /// <summary>Top-down search below MmapBase for a free, aligned range of <paramref name="len"/> bytes.</summary>
    public static ulong? GetUnmappedArea(AddressSpace s, ulong len)
    {
        var align = Math.Min(System.Numerics.BitOperations.RoundUpToPowerOf2(Math.Max(len, PageGeometry.PageSize)), PageGeometry.PudSize);
        var top = AddressSpace.MmapBase;
        // Walk the gaps from the top down: between each VMA below `top` and the one above it.
        for (var i = s.Vmas.Length; i >= 0; i--)
        {
            var gapEnd = i == s.Vmas.Length ? AddressSpace.MmapBase : Math.Min(s.Vmas[i].Start, AddressSpace.MmapBase);
            var gapStart = i == 0 ? AddressSpace.MmapMinAddr : s.Vmas[i - 1].End;
            if (gapStart >= top || gapEnd <= gapStart || gapEnd < len) continue;
            var candidate = PageGeometry.AlignDown(gapEnd - len, align);
            if (candidate >= gapStart && candidate >= AddressSpace.MmapMinAddr) return candidate;
        }
        return null;
    }

    /// <summary>munmap(addr, len): EINVAL for an unaligned address or zero length; unmapping nothing
    /// succeeds silently. Notifier start/end bracket the removal.</summary>
    public static Decision Munmap(AddressSpace s, ulong addr, ulong length)
    {
        if (!PageGeometry.IsPageAligned(addr) || length == 0) return Decision.Fail(Errno.EINVAL);
        var end = addr + PageGeometry.PageAlign(length);
        if (end > AddressSpace.TaskSize || end < addr) return Decision.Fail(Errno.EINVAL);
        return Decision.Ok(s.IsMapped(addr, end) ? UnmapEvents(s, addr, end) : []);
    }

    private static IDomainEvent[] UnmapEvents(AddressSpace s, ulong start, ulong end) =>
    [
        new MmuNotifierInvalidateRangeStart(start, end, MmuNotifyEvent.Unmap),
        new VmaRangeUnmapped(start, end),
        new MmuNotifierInvalidateRangeEnd(start, end, MmuNotifyEvent.Unmap),
    ];

    /// <summary>mprotect(addr, len, prot) (mm/mprotect.c do_mprotect_pkey): EINVAL unaligned; ENOMEM if
    /// any page of the range is unmapped; EACCES if a VMA lacks the VM_MAYx for a requested bit.
    /// change_protection notifies only where PTEs exist.</summary>
    public static Decision Mprotect(AddressSpace s, ulong addr, ulong length, Prot prot)
    {
        if (!PageGeometry.IsPageAligned(addr)) return Decision.Fail(Errno.EINVAL);
        if (length == 0) return Decision.Ok();
        var end = addr + PageGeometry.PageAlign(length);
        if (end > AddressSpace.TaskSize || end < addr) return Decision.Fail(Errno.ENOMEM);
        var covered = addr;
        foreach (var v in s.VmasIntersecting(addr, end))
        {
            if (v.Start > covered) return Decision.Fail(Errno.ENOMEM);
            var newFlags = (v.Flags & ~Rwx) | ProtBits(prot);
            // mprotect relies on VM_MAYx >> 4 == VM_x.
            if ((((ulong)newFlags & ~((ulong)newFlags >> 4)) & (ulong)Rwx) != 0) return Decision.Fail(Errno.EACCES);
            covered = v.End;
        }
        if (covered < end) return Decision.Fail(Errno.ENOMEM);
        var withPtes = s.VmasIntersecting(addr, end).Any(v => v.Ptes.Overlaps(addr, end));
        return withPtes
            ? Decision.Ok(new MmuNotifierInvalidateRangeStart(addr, end, MmuNotifyEvent.ProtectionVma),
                new VmaProtectionChanged(addr, end, prot),
                new MmuNotifierInvalidateRangeEnd(addr, end, MmuNotifyEvent.ProtectionVma))
            : Decision.Ok(new VmaProtectionChanged(addr, end, prot));
    }

    /// <summary>unmap_mapping_range over a device's BAR file ranges (vfio_pci_zap_bars): every VMA
    /// backed by one of <paramref name="regions"/> of <paramref name="device"/> loses its PTEs, with a
    /// notifier start/end per VMA (zap_page_range_single).</summary>
    public static Decision ZapMappingRange(AddressSpace s, string device, IReadOnlySet<int> regions)
    {
        var events = new List<IDomainEvent>();
        foreach (var v in s.Vmas)
        {
            if (v.Backing.Device != device || !regions.Contains(v.Backing.Region)) continue;
            events.Add(new MmuNotifierInvalidateRangeStart(v.Start, v.End, MmuNotifyEvent.Clear));
            events.Add(new UserPtesZapped(v.Start, v.End));
            events.Add(new MmuNotifierInvalidateRangeEnd(v.Start, v.End, MmuNotifyEvent.Clear));
        }
        return Decision.Ok(events);
    }

    /// <summary>KVM's pfn lookup for <paramref name="hva"/> (hva_to_pfn): GUP for ordinary VMAs,
    /// hva_to_pfn_remapped for VM_IO/VM_PFNMAP ones, which faults in through fixup_user_fault when the
    /// PTE is absent. When that fault needs the driver, the step says so and
    /// <see cref="CompleteFaultIn"/> finishes it with the driver's answer.</summary>
    public static FaultInStep BeginFaultIn(AddressSpace s, ulong hva, bool write)
    {
        var page = PageGeometry.AlignDown(hva, PageGeometry.PageSize);
        var vma = s.VmaLookup(page);
        if (vma is null) return new(PfnLookup.Failed(PfnStatus.NoVma), null, null);
        // check_vma_flags / vma_permits_fault: a write needs VM_WRITE, a read VM_READ.
        if (write ? !vma.Flags.Has(VmFlags.VM_WRITE) : !vma.Flags.Has(VmFlags.VM_READ))
            return new(PfnLookup.Failed(PfnStatus.AccessDenied), vma, null);
        if (vma.Ptes.Contains(page))
            return new(PfnLookup.Of(vma.PfnOf(page), vma.PteWritable), vma, null);
        switch (vma.Backing.Kind)
        {
            case BackingKind.Anonymous:
                return new(PfnLookup.Of(vma.PfnOf(page), vma.PteWritable), vma, null, new PteRange(page, page + PageGeometry.PageSize));
            case BackingKind.VfioPci:
                return new(default, vma, vma);
            default:
                // remap_pfn_range mappings have no ->fault: a zapped page faults VM_FAULT_SIGBUS.
                return new(PfnLookup.Failed(PfnStatus.Sigbus), vma, null);
        }
    }

    public static FaultInStep CompleteFaultIn(AddressSpace s, ulong hva, DriverFaultAnswer answer)
    {
        var page = PageGeometry.AlignDown(hva, PageGeometry.PageSize);
        var vma = s.VmaLookup(page);
        if (vma is null) return new(PfnLookup.Failed(PfnStatus.NoVma), null, null);
        if (answer.Sigbus) return new(PfnLookup.Failed(PfnStatus.Sigbus), vma, null);
        var from = Math.Max(answer.PopulateStart, vma.Start);
        var to = Math.Min(answer.PopulateEnd, vma.End);
        return new(PfnLookup.Of(vma.PfnOf(page), vma.PteWritable), vma, null, new PteRange(from, to));
    }

    public static AddressSpace Evolve(AddressSpace s, IDomainEvent e) => e switch
    {
        VmaMapped m => s with
        {
            Vmas = Insert(s.Vmas, m.Vma),
            NextRamPfn = m.Vma.Backing.Kind == BackingKind.Anonymous
                ? Math.Max(s.NextRamPfn, m.Vma.Backing.PfnAtStart + (m.Vma.Length >> PageGeometry.PageShift))
                : s.NextRamPfn,
        },
        VmaRangeUnmapped u => s with { Vmas = Cut(s.Vmas, u.Start, u.End, keepInside: null) },
        VmaProtectionChanged p => s with
        {
            Vmas = Cut(s.Vmas, p.Start, p.End, v => v with { Flags = (v.Flags & ~Rwx) | ProtBits(p.Prot) }),
        },
        UserPtesPopulated p => Populated(s, p.Start, p.End),
        UserPtesPopulatedBatch b => PopulatedAll(s, b.Ranges),
        UserPtesZapped z => s with { Vmas = Map(s.Vmas, z.Start, z.End, v => v with { Ptes = v.Ptes.Remove(z.Start, z.End) }) },
        _ => s,
    };

    private static AddressSpace Populated(AddressSpace s, ulong start, ulong end) =>
        s with { Vmas = Map(s.Vmas, start, end, v => v with { Ptes = v.Ptes.Add(Math.Max(start, v.Start), Math.Min(end, v.End)) }) };

    /// <summary>A batch's ranges, each VMA's share added to its PTEs in one copy
    /// (<see cref="PageRangeSet.AddAll"/>), the VMA array copied once: the same state as folding
    /// <see cref="Populated"/> range by range, which copied both per range. Also the fold of ranges a
    /// caller holds without an event (the mm's pass, <c>MmActor</c>).</summary>
    public static AddressSpace PopulatedAll(AddressSpace s, ReadOnlySpan<PteRange> ranges)
    {
        if (ranges.Length == 1) return Populated(s, ranges[0].Start, ranges[0].End);
        Vma[]? vmas = null;
        // A VMA's share of the ranges, in a pooled buffer (a list grown per call was ~6 % of the bytes
        // the in-memory pipeline allocated: the mm's pass and the checker's replica fold each batch).
        var share = ArrayPool<(ulong Start, ulong End)>.Shared.Rent(ranges.Length);
        try
        {
            for (var i = 0; i < s.Vmas.Length; i++)
            {
                var v = s.Vmas[i];
                var n = 0;
                foreach (var r in ranges)
                    if (r.Start < v.End && v.Start < r.End) share[n++] = (Math.Max(r.Start, v.Start), Math.Min(r.End, v.End));
                if (n == 0) continue;
                vmas ??= [.. s.Vmas];
                vmas[i] = v with { Ptes = v.Ptes.AddAll(share.AsSpan(0, n)) };
            }
        }
        finally
        {
            ArrayPool<(ulong Start, ulong End)>.Shared.Return(share);
        }
        return vmas is null ? s : s with { Vmas = ImmutableCollectionsMarshal.AsImmutableArray(vmas) };
    }

    /// <summary>The event of a pass over many faults that populated these PTE ranges, in order: none,
    /// one <see cref="UserPtesPopulated"/>, or one <see cref="UserPtesPopulatedBatch"/> — the same
    /// state change as one event per range, in one journal entry.</summary>
    public static IDomainEvent[] PopulatedEvents(IReadOnlyList<PteRange> ranges) => ranges.Count switch
    {
        0 => [],
        1 => [new UserPtesPopulated(ranges[0].Start, ranges[0].End)],
        _ => [new UserPtesPopulatedBatch([.. ranges])],
    };

    private static ImmutableArray<Vma> Insert(ImmutableArray<Vma> vmas, Vma vma)
    {
        var i = 0;
        while (i < vmas.Length && vmas[i].Start < vma.Start) i++;
        return vmas.Insert(i, vma);
    }

    /// <summary>The VMAs with <paramref name="f"/> applied to those intersecting [start, end): a binary
    /// search for the first, then only those are replaced (this runs for every populated PTE).</summary>
    private static ImmutableArray<Vma> Map(ImmutableArray<Vma> vmas, ulong start, ulong end, Func<Vma, Vma> f)
    {
        int lo = 0, hi = vmas.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (vmas[mid].End <= start) lo = mid + 1;
            else hi = mid;
        }
        if (lo >= vmas.Length || vmas[lo].Start >= end) return vmas;
        var b = vmas.ToBuilder();
        for (var i = lo; i < vmas.Length && vmas[i].Start < end; i++) b[i] = f(vmas[i]);
        return b.MoveToImmutable();
    }

    /// <summary>Splits VMAs at start and end (__split_vma); the parts inside [start, end) are dropped
    /// (keepInside null) or transformed.</summary>
    private static ImmutableArray<Vma> Cut(ImmutableArray<Vma> vmas, ulong start, ulong end, Func<Vma, Vma>? keepInside)
    {
        var b = ImmutableArray.CreateBuilder<Vma>(vmas.Length + 2);
        foreach (var v in vmas)
        {
            if (v.End <= start || v.Start >= end) { b.Add(v); continue; }
            if (v.Start < start) b.Add(v.Slice(v.Start, start));
            if (keepInside is not null) b.Add(keepInside(v.Slice(Math.Max(v.Start, start), Math.Min(v.End, end))));
            if (v.End > end) b.Add(v.Slice(end, v.End));
        }
        return b.ToImmutable();
    }
}
