using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Stage2;
using CsCheck;
using Xunit;

namespace ActorSim.Domain.Tests;

/// <summary>The stage-2 table (a radix tree) against a plain list of leaves with the same rules:
/// an install removes every leaf it overlaps, an unmap every leaf overlapping the range, a lookup
/// finds the leaf containing the address; leaves come out in IPA order.</summary>
public class Stage2TableModelTests
{
    private static readonly ulong[] Bases = [0, 0x4000_0000, 0x80_0000_0000, 0x3_0000_0000_0000];

    private static readonly Gen<Stage2Leaf> GenLeaf =
        Gen.Select(Gen.Int[0, Bases.Length - 1], Gen.Int[1, 10], Gen.Int[0, 40]).Select((b, lv, i) =>
        {
            var level = lv == 1 ? 1 : lv <= 3 ? 2 : 3;
            var size = PageGeometry.SizeOfLevel(level);
            var gpa = Bases[b] + (ulong)i * (level == 3 ? PageGeometry.PageSize * 37 : size);
            gpa -= gpa % size;
            return new Stage2Leaf(gpa, level, KvmPgtableProt.KVM_PGTABLE_PROT_R, (ulong)i << 12);
        });

    [Fact]
    public void Matches_a_list_of_leaves_under_random_installs_and_unmaps()
    {
        Gen.Select(Gen.Bool, GenLeaf, Gen.Int[1, 3000]).Array[1, 120].Sample(ops =>
        {
            var t = Stage2Table.Empty;
            var model = new List<Stage2Leaf>();
            foreach (var (install, leaf, pages) in ops)
            {
                ulong start = leaf.Gpa, end = install ? leaf.EndGpa : leaf.Gpa + (ulong)pages * PageGeometry.PageSize;
                model.RemoveAll(l => l.Gpa < end && l.EndGpa > start);
                if (install) { model.Add(leaf); t = t.Install(leaf); }
                else t = t.Unmap(start, end);
                if (t.Count != model.Count) return false;
                if (!t.Leaves.SequenceEqual(model.OrderBy(l => l.Gpa))) return false;
                foreach (var probe in new[] { leaf.Gpa, leaf.Gpa + 0x1000, leaf.EndGpa - 1, leaf.EndGpa, start - 1 })
                {
                    var expected = model.Where(l => l.Contains(probe)).Select(l => (Stage2Leaf?)l).SingleOrDefault();
                    if (t.Lookup(probe) != expected) return false;
                }
            }
            return true;
        });
    }

    [Fact]
    public void The_leaves_in_a_range_are_those_of_the_list_that_overlap_it()
    {
        // Ranges from a few pages to several PUDs, starting inside blocks, at bases and between them.
        Gen.Select(GenLeaf.Array[0, 60], GenLeaf, Gen.Int[-600, 600], Gen.ULong[1, 3UL << 30]).Sample((leaves, at, shift, length) =>
        {
            var t = leaves.Aggregate(Stage2Table.Empty, (x, l) => x.Install(l));
            var start = (ulong)((long)at.Gpa + shift * (long)PageGeometry.PageSize);
            var end = start + length;
            var expected = t.Leaves.Where(l => l.Gpa < end && l.EndGpa > start);
            return t.LeavesIn(start, end).SequenceEqual(expected) && t.LeavesIn(start, start).Count == 0;
        });
    }

    [Fact]
    public void Changes_sharing_an_edit_give_the_same_table_and_leave_the_one_they_started_from_as_it_was()
    {
        // A table built without edits, then the same random changes applied twice: one by one without
        // an edit, and in runs sharing an edit (a new edit every few changes, as batches do).
        Gen.Select(GenLeaf.Array[0, 40], Gen.Select(Gen.Bool, GenLeaf, Gen.Int[1, 3000], Gen.Int[0, 4]).Array[1, 120]).Sample((initial, ops) =>
        {
            var start = initial.Aggregate(Stage2Table.Empty, (t, l) => t.Install(l));
            var startLeaves = start.Leaves.ToList();
            Stage2Table plain = start, edited = start;
            var edit = new Stage2Edit();
            foreach (var (install, leaf, pages, newEdit) in ops)
            {
                if (newEdit == 0) edit = new Stage2Edit();
                ulong from = leaf.Gpa, to = install ? leaf.EndGpa : leaf.Gpa + (ulong)pages * PageGeometry.PageSize;
                plain = install ? plain.Install(leaf) : plain.Unmap(from, to);
                edited = install ? edited.Install(leaf, edit) : edited.Unmap(from, to, edit);
                if (edited.Count != plain.Count || !edited.Leaves.SequenceEqual(plain.Leaves)) return false;
                if (edited.Lookup(leaf.Gpa) != plain.Lookup(leaf.Gpa)) return false;
            }
            return start.Count == startLeaves.Count && start.Leaves.SequenceEqual(startLeaves);
        });
    }

    [Fact]
    public void An_edit_copies_a_node_once()
    {
        // Two pages in one 16-page chunk: the second install under the same edit changes the nodes the
        // first one copied, so the table after the first install sees the second leaf too (which is why
        // only the newest table of an edit is valid); without an edit it does not.
        var a = new Stage2Leaf(0x4000_0000, 3, KvmPgtableProt.KVM_PGTABLE_PROT_R, 0x1000);
        var b = a with { Gpa = 0x4000_1000 };
        var base0 = Stage2Table.Empty.Install(a with { Gpa = 0x8000_0000 });
        var edit = new Stage2Edit();
        var one = base0.Install(a, edit);
        var two = one.Install(b, edit);
        Assert.Equal(b, one.Lookup(b.Gpa));
        Assert.Equal((1, 3), (base0.Count, two.Count));
        Assert.Null(base0.Lookup(a.Gpa));
        var plainOne = base0.Install(a);
        plainOne.Install(b);
        Assert.Null(plainOne.Lookup(b.Gpa));
    }

    [Fact]
    public void A_change_leaves_the_table_it_came_from_as_it_was()
    {
        var leaf = new Stage2Leaf(0x4000_0000, 3, KvmPgtableProt.KVM_PGTABLE_PROT_R, 0x1000);
        var one = Stage2Table.Empty.Install(leaf);
        var two = one.Install(leaf with { Gpa = 0x4000_1000 });
        var none = two.Unmap(0, ulong.MaxValue);
        Assert.Equal((1, 2, 0), (one.Count, two.Count, none.Count));
        Assert.Equal(leaf, one.Lookup(0x4000_0fff));
        Assert.Null(one.Lookup(0x4000_1000));
        Assert.Equal(Stage2Table.Empty, none);
        Assert.NotEqual(one, two);
        Assert.Equal(one, two.Unmap(0x4000_1000, 0x4000_2000));
    }
}
