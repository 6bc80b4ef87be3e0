using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Host.Commands;
using ActorSim.Persistence.EventLog;

namespace ActorSim.Host.Tests;

/// <summary><c>explain</c>'s reading of a history, on events made by hand.</summary>
public class ExplainTests
{
    /// <summary>Two notifiers in flight (an munmap of one range and a zap of another), KVM's writes after
    /// both: each unmapped range is put down to the notifier of its own hva range, and a range unmapped
    /// without MmuInvalidateBegan before it to a memslot change.</summary>
    [Fact]
    public void An_invalidation_is_put_down_to_the_notifier_of_its_own_hva_range()
    {
        const ulong hvaA = 0x7000_0000_0000, hvaB = 0x7100_0000_0000, size = 0x10_0000, gpa = 0x80_0000_0000;
        RunEvent[] events =
        [
            new(1, "mm-vmm", 1, new MmuNotifierInvalidateRangeStart(hvaA, hvaA + size, MmuNotifyEvent.Unmap), 0),
            new(2, "mm-vmm", 2, new MmuNotifierInvalidateRangeStart(hvaB, hvaB + size, MmuNotifyEvent.Clear), 0),
            new(3, "kvm-vm1", 1, new MmuInvalidateBegan("vm1", hvaA, hvaA + size), 0),
            new(4, "kvm-vm1", 2, new Stage2RangeUnmapped("vm1", gpa, gpa + size), 0),
            new(5, "kvm-vm1", 3, new MmuInvalidateEnded("vm1", hvaA, hvaA + size), 0),
            new(6, "kvm-vm1", 4, new Stage2RangeUnmapped("vm1", gpa, gpa + size), 0),
        ];
        var lines = ExplainCommand.Explain(events, "vm1", gpa + 0x1000).ToArray();
        Assert.Contains("  seq 4: invalidation: stage-2 0x8000000000..0x8000100000 unmapped (MMU notifier Unmap of hva 0x700000000000..0x700000100000, seq 1)", lines);
        Assert.Contains("  seq 6: invalidation: stage-2 0x8000000000..0x8000100000 unmapped (memslot change)", lines);
    }

    /// <summary>The mm's notifier can land after KVM's writes (two actors, two writes): the nearest of
    /// the range's notifiers counts, before or after, the earlier of two as near; explain reads the run
    /// once, so it learns of the later one after the invalidation.</summary>
    [Fact]
    public void The_nearest_notifier_of_the_range_counts_even_when_it_comes_after()
    {
        const ulong hva = 0x7000_0000_0000, size = 0x10_0000, gpa = 0x80_0000_0000;
        RunEvent[] events =
        [
            new(1, "mm-vmm", 1, new MmuNotifierInvalidateRangeStart(hva, hva + size, MmuNotifyEvent.Clear), 0),
            new(2, "kvm-vm1", 1, new MmuInvalidateBegan("vm1", hva, hva + size), 0),
            new(3, "mm-vmm", 2, new MmuNotifierInvalidateRangeStart(hva + size, hva + 2 * size, MmuNotifyEvent.Clear), 0), // another range
            new(4, "kvm-vm1", 2, new Stage2RangeUnmapped("vm1", gpa, gpa + size), 0),
            new(5, "mm-vmm", 3, new MmuNotifierInvalidateRangeStart(hva, hva + size, MmuNotifyEvent.Unmap), 0),
            new(6, "kvm-vm1", 3, new MmuInvalidateBegan("vm1", hva, hva + size), 0),
            new(7, "kvm-vm1", 4, new Stage2RangeUnmapped("vm1", gpa, gpa + size), 0),
            new(8, "kvm-vm1", 5, new MmuInvalidateEnded("vm1", hva, hva + size), 0),
            new(9, "mm-vmm", 4, new MmuNotifierInvalidateRangeStart(hva, hva + size, MmuNotifyEvent.Clear), 0), // as near to 7 as 5 is
        ];
        var lines = ExplainCommand.Explain(events, "vm1", gpa).ToArray();
        Assert.Contains("  seq 4: invalidation: stage-2 0x8000000000..0x8000100000 unmapped (MMU notifier Unmap of hva 0x700000000000..0x700000100000, seq 5)", lines);
        Assert.Contains("  seq 7: invalidation: stage-2 0x8000000000..0x8000100000 unmapped (MMU notifier Unmap of hva 0x700000000000..0x700000100000, seq 5)", lines);
    }
}
