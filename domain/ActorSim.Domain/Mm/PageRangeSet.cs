using System.Collections.Immutable;

namespace ActorSim.Domain.Mm;

/// <summary>A set of page-aligned half-open address ranges [Start, End), kept sorted, disjoint and
/// merged. Used for the present user PTEs of a VMA.</summary>
public sealed class PageRangeSet : IEquatable<PageRangeSet>
{
    public static readonly PageRangeSet Empty = new(ImmutableArray<(ulong, ulong)>.Empty);
    public ImmutableArray<(ulong Start, ulong End)> Ranges { get; }

    private PageRangeSet(ImmutableArray<(ulong, ulong)> ranges) => Ranges = ranges;

    public bool IsEmpty => Ranges.Length == 0;

    public bool Contains(ulong addr)
    {
        foreach (var (s, e) in Ranges)
        {
            if (addr < s) return false;
            if (addr < e) return true;
        }
        return false;
    }

    public bool Overlaps(ulong start, ulong end) => Ranges.Any(r => r.Start < end && start < r.End);

    public PageRangeSet Add(ulong start, ulong end)
    {
        if (start >= end) return this;
        var b = ImmutableArray.CreateBuilder<(ulong, ulong)>();
        foreach (var (s, e) in Ranges)
        {
            if (e < start || s > end) { b.Add((s, e)); continue; }
            start = Math.Min(start, s);
            end = Math.Max(end, e);
        }
        b.Add((start, end));
        return new PageRangeSet(b.OrderBy(r => r.Item1).ToImmutableArray());
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
