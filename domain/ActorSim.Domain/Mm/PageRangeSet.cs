using System.Buffers;
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

    /// <summary>Adds every range of <paramref name="ranges"/> (any order, empty ones ignored): the same
    /// set as adding them one by one, which copies the array once per range (a batch of faults populates
    /// one page per fault). Here the new ranges are sorted aside and merged with this set's in one pass
    /// into a pooled buffer, and the result is the one array allocated; a batch whose ranges are all
    /// present already (faults on populated pages) allocates nothing.</summary>
    public PageRangeSet AddAll(ReadOnlySpan<(ulong Start, ulong End)> ranges)
    {
        if (ranges.Length == 1) return Add(ranges[0].Start, ranges[0].End);
        var adds = ArrayPool<(ulong Start, ulong End)>.Shared.Rent(Math.Max(1, ranges.Length));
        var merged = ArrayPool<(ulong Start, ulong End)>.Shared.Rent(Ranges.Length + ranges.Length);
        try
        {
            var n = 0;
            foreach (var r in ranges)
                if (r.Start < r.End && !Covers(r.Start, r.End)) adds[n++] = r;
            if (n == 0) return this;
            var add = adds.AsSpan(0, n);
            add.Sort(static (a, b) => a.Start.CompareTo(b.Start));
            var old = Ranges.AsSpan();
            int i = 0, j = 0, m = 0;
            while (i < old.Length || j < add.Length)
            {
                // The next range by start, from either list; merged with the last one out if it
                // overlaps or touches it.
                var next = j >= add.Length || (i < old.Length && old[i].Start <= add[j].Start) ? old[i++] : add[j++];
                if (m > 0 && next.Start <= merged[m - 1].End) merged[m - 1].End = Math.Max(merged[m - 1].End, next.End);
                else merged[m++] = next;
            }
            return new PageRangeSet(ImmutableCollectionsMarshal.AsImmutableArray(merged.AsSpan(0, m).ToArray()));
        }
        finally
        {
            ArrayPool<(ulong Start, ulong End)>.Shared.Return(adds);
            ArrayPool<(ulong Start, ulong End)>.Shared.Return(merged);
        }
    }

    /// <summary>Is all of [start, end) in one range of the set?</summary>
    private bool Covers(ulong start, ulong end)
    {
        var i = FirstEndingAfter(start);
        return i < Ranges.Length && Ranges[i].Start <= start && end <= Ranges[i].End;
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
