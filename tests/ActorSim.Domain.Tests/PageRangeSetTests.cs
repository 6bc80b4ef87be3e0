using ActorSim.Domain.Mm;
using CsCheck;
using Xunit;

namespace ActorSim.Domain.Tests;

/// <summary>PageRangeSet against a plain set of page numbers: random adds and removes must give the
/// same pages, and the ranges must stay sorted, disjoint and merged (no two touching).</summary>
public class PageRangeSetTests
{
    private const ulong Page = 4096;

    [Fact]
    public void Matches_a_set_of_pages_under_random_adds_and_removes()
    {
        Gen.Select(Gen.Bool, Gen.Int[0, 40], Gen.Int[0, 6]).Array[1, 60].Sample(ops =>
        {
            var set = PageRangeSet.Empty;
            var model = new SortedSet<int>();
            foreach (var (add, first, count) in ops)
            {
                var (start, end) = ((ulong)first * Page, (ulong)(first + count) * Page);
                if (add) { set = set.Add(start, end); for (var p = first; p < first + count; p++) model.Add(p); }
                else { set = set.Remove(start, end); for (var p = first; p < first + count; p++) model.Remove(p); }
                for (var p = 0; p < 48; p++)
                    if (set.Contains((ulong)p * Page + 5) != model.Contains(p)) return false;
                for (var i = 1; i < set.Ranges.Length; i++)
                    if (set.Ranges[i - 1].End >= set.Ranges[i].Start) return false; // merged and sorted
                if (set.Ranges.Any(r => r.Start >= r.End)) return false;
                if (set.Overlaps(start, end) != model.Any(p => p >= first && p < first + count)) return false;
            }
            return true;
        });
    }

    [Fact]
    public void Adding_a_range_that_touches_two_merges_all_three()
    {
        var s = PageRangeSet.Empty.Add(0, Page).Add(2 * Page, 3 * Page).Add(Page, 2 * Page);
        Assert.Equal(new[] { (0UL, 3 * Page) }, s.Ranges.ToArray());
        Assert.Same(s, s.Add(Page, 2 * Page));
    }

    [Fact]
    public void AddAll_gives_the_set_adding_one_by_one_gives()
    {
        var range = Gen.Select(Gen.Int[0, 40], Gen.Int[0, 6]).Select(t => ((ulong)t.Item1 * Page, (ulong)(t.Item1 + t.Item2) * Page));
        Gen.Select(range.Array[0, 12], range.Array[1, 20]).Sample(t =>
        {
            var (before, added) = t;
            var set = before.Aggregate(PageRangeSet.Empty, (s, r) => s.Add(r.Item1, r.Item2));
            var one = added.Aggregate(set, (s, r) => s.Add(r.Item1, r.Item2));
            var all = set.AddAll([.. added.Select(r => (r.Item1, r.Item2))]);
            return one.Equals(all);
        });
    }
}
