using System.Collections.Immutable;
using System.Runtime.InteropServices;

namespace ActorSim.Domain.Mm;

/// <summary>A set of page-aligned half-open address ranges [Start, End), kept sorted, disjoint and
/// merged. Used for the present user PTEs of a VMA.</summary>
public sealed class PageRangeSet : IEquatable<PageRangeSet>
{
    public static readonly PageRangeSet Empty = new(ImmutableArray<(ulong, ulong)>.Empty);
    public ImmutableArray<(ulong Start, ulong End)> Ranges { get; }

    private PageRangeSet(ImmutableArray<(ulong, ulong)> ranges) => Ranges = ranges;

    public bool IsEmpty => Ranges.Length == 0;

    /// <summary>The index of the first range whose End is after <paramref name="addr"/> (or at it, when
    /// <paramref name="orAt"/>). The ranges are sorted and disjoint, so their Ends increase too.</summary>
    private int FirstEndingAfter(ulong addr, bool orAt = false)
    {
        int lo = 0, hi = Ranges.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            var e = Ranges[mid].End;
            if (e < addr || (e == addr && !orAt)) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    public bool Contains(ulong addr)
    {
        var i = FirstEndingAfter(addr);
        return i < Ranges.Length && Ranges[i].Start <= addr;
    }

    public bool Overlaps(ulong start, ulong end)
    {
        if (start >= end) return false;
        var i = FirstEndingAfter(start);
        return i < Ranges.Length && Ranges[i].Start < end;
    }

    /// <summary>Adds [start, end), merging the ranges it overlaps or touches: a binary search and one
    /// copy of the array (faults populate PTEs one page at a time, so this is on the fault path).</summary>
    public PageRangeSet Add(ulong start, ulong end)
    {
        if (start >= end) return this;
        var first = FirstEndingAfter(start, orAt: true); // the first range that ends at or after start may touch it
        var last = first;
        while (last < Ranges.Length && Ranges[last].Start <= end)
        {
            start = Math.Min(start, Ranges[last].Start);
            end = Math.Max(end, Ranges[last].End);
            last++;
        }
        if (last - first == 1 && Ranges[first] == (start, end)) return this;
        var merged = new (ulong, ulong)[Ranges.Length - (last - first) + 1];
        var span = Ranges.AsSpan();
        span[..first].CopyTo(merged);
        merged[first] = (start, end);
        span[last..].CopyTo(merged.AsSpan(first + 1));
        return new PageRangeSet(ImmutableCollectionsMarshal.AsImmutableArray(merged));
    }

    /// <summary>Adds every range of <paramref name="ranges"/> (any order, empty ones ignored) with one copy
    /// of the array: the same set as adding them one by one, which copies it once per range (a batch of
    /// faults populates one page per fault).</summary>
    public PageRangeSet AddAll(IReadOnlyList<(ulong Start, ulong End)> ranges)
    {
        if (ranges.Count == 1) return Add(ranges[0].Start, ranges[0].End);
        var all = new List<(ulong Start, ulong End)>(Ranges.Length + ranges.Count);
        all.AddRange(Ranges);
        foreach (var r in ranges)
            if (r.Start < r.End) all.Add(r);
        if (all.Count == Ranges.Length) return this;
        all.Sort((a, b) => a.Start.CompareTo(b.Start));
        var merged = new List<(ulong, ulong)>(all.Count);
        var (start, end) = all[0];
        for (var i = 1; i < all.Count; i++)
        {
            if (all[i].Start <= end) end = Math.Max(end, all[i].End); // overlaps or touches: merge
            else
            {
                merged.Add((start, end));
                (start, end) = all[i];
            }
        }
        merged.Add((start, end));
        return new PageRangeSet(ImmutableCollectionsMarshal.AsImmutableArray(merged.ToArray()));
    }

    public PageRangeSet Remove(ulong start, ulong end)
    {
        if (start >= end || IsEmpty) return this;
        var b = ImmutableArray.CreateBuilder<(ulong, ulong)>();
        foreach (var (s, e) in Ranges)
        {
            if (e <= start || s >= end) { b.Add((s, e)); continue; }
            if (s < start) b.Add((s, start));
            if (e > end) b.Add((end, e));
        }
        return new PageRangeSet(b.ToImmutable());
    }

    /// <summary>The part of this set inside [start, end).</summary>
    public PageRangeSet Clip(ulong start, ulong end) => Remove(0, start).Remove(end, ulong.MaxValue);

    public bool Equals(PageRangeSet? other) => other is not null && Ranges.SequenceEqual(other.Ranges);
    public override bool Equals(object? obj) => Equals(obj as PageRangeSet);
    public override int GetHashCode() => Ranges.Aggregate(17, (h, r) => HashCode.Combine(h, r.Start, r.End));
    public override string ToString() => string.Join(",", Ranges.Select(r => $"[0x{r.Start:x},0x{r.End:x})"));
}
