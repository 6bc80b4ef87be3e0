using System.Collections.Immutable;
using static ActorSim.Domain.Kernel.PageGeometry;

namespace ActorSim.Domain.Kvm;

/// <summary>A VM's stage-2 leaves by block base IPA. Immutable.</summary>
public sealed class Stage2Table : IEquatable<Stage2Table>
{
    public static readonly Stage2Table Empty = new(ImmutableSortedDictionary<ulong, Stage2Leaf>.Empty);
    private readonly ImmutableSortedDictionary<ulong, Stage2Leaf> _leaves;

    private Stage2Table(ImmutableSortedDictionary<ulong, Stage2Leaf> leaves) => _leaves = leaves;

    public int Count => _leaves.Count;
    public IEnumerable<Stage2Leaf> Leaves => _leaves.Values;

    /// <summary>The leaf that translates <paramref name="gpa"/>, if any (page, then PMD, then PUD block).</summary>
    public Stage2Leaf? Lookup(ulong gpa)
    {
        if (_leaves.TryGetValue(AlignDown(gpa, PageSize), out var l) && l.Level == 3) return l;
        if (_leaves.TryGetValue(AlignDown(gpa, PmdSize), out l) && l.Level == 2) return l;
        if (_leaves.TryGetValue(AlignDown(gpa, PudSize), out l) && l.Level == 1) return l;
        return null;
    }

    /// <summary>Installs a leaf, removing every leaf it overlaps (a block replaces the table below it;
    /// break-before-make replaces a leaf of another type).</summary>
    public Stage2Table Install(Stage2Leaf leaf) =>
        new(Without(leaf.Gpa, leaf.EndGpa).SetItem(leaf.Gpa, leaf));

    /// <summary>Removes every leaf overlapping [start, end) (a partially covered block goes whole).</summary>
    public Stage2Table Unmap(ulong start, ulong end)
    {
        var d = Without(start, end);
        return ReferenceEquals(d, _leaves) ? this : new Stage2Table(d);
    }

    /// <summary>The table without every leaf overlapping [start, end). Probes the candidate keys (each
    /// page, PMD and PUD base of the range) when that is fewer than the leaves, else scans.</summary>
    private ImmutableSortedDictionary<ulong, Stage2Leaf> Without(ulong start, ulong end)
    {
        List<ulong>? doomed = null;
        var pages = (end - start + PageSize - 1) / PageSize;
        if (pages <= (ulong)_leaves.Count)
        {
            void Probe(ulong key, int level)
            {
                if (_leaves.TryGetValue(key, out var l) && l.Level == level && l.EndGpa > start && l.Gpa < end) (doomed ??= []).Add(key);
            }
            for (var g = AlignDown(start, PudSize); g < end; g += PudSize) Probe(g, 1);
            for (var g = AlignDown(start, PmdSize); g < end; g += PmdSize) Probe(g, 2);
            for (var g = AlignDown(start, PageSize); g < end; g += PageSize) Probe(g, 3);
        }
        else
        {
            foreach (var (gpa, leaf) in _leaves)
            {
                if (gpa >= end) break;
                if (leaf.EndGpa > start) (doomed ??= []).Add(gpa);
            }
        }
        return doomed is null ? _leaves : _leaves.RemoveRange(doomed);
    }

    public bool Equals(Stage2Table? other) => other is not null && _leaves.Count == other._leaves.Count &&
        _leaves.All(kv => other._leaves.TryGetValue(kv.Key, out var o) && o == kv.Value);
    public override bool Equals(object? obj) => Equals(obj as Stage2Table);
    public override int GetHashCode() => _leaves.Count;
}
