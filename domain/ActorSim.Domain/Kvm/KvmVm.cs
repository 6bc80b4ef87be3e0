using System.Collections.Immutable;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Mm;

namespace ActorSim.Domain.Kvm;

/// <summary>A VM: memslots, the stage-2 table, and the MMU-notifier invalidation state
/// (<c>mmu_invalidate_seq</c>, <c>mmu_invalidate_in_progress</c>).</summary>
public sealed record KvmVm(
    string Name,
    ImmutableSortedDictionary<int, Memslot> Memslots,
    Stage2Table Stage2,
    ulong MmuInvalidateSeq,
    int MmuInvalidateInProgress,
    bool HasMte = false,
    int IpaBits = KvmVm.DefaultIpaBits,
    bool NisvToUser = false,
    ImmutableList<IoRemap>? IoRemaps = null)
{
    /// <summary>KVM's default IPA size on arm64 (40 bits) when the VMM does not ask for another.</summary>
    public const int DefaultIpaBits = 40;
    /// <summary>ARM64_MIN_PARANGE_BITS: the smallest IPA size KVM_CREATE_VM takes.</summary>
    public const int MinIpaBits = 32;
    /// <summary>kvm_ipa_limit of the modelled host: the PARange the CPU reports, clamped by the kernel's
    /// PA size (kvm_set_ipa_limit). 48 is the most a host with 4 KiB pages and no FEAT_LPA2 can have [U:
    /// a real host may report less, 40 or 44].</summary>
    public const int IpaLimit = 48;
    /// <summary>KVM_USER_MEM_SLOTS (generic default, SHRT_MAX - internal slots) [U].</summary>
    public const int KvmUserMemSlots = 32764;

    /// <param name="nisvToUser">The VMM enabled KVM_CAP_ARM_NISV_TO_USER (<see cref="FaultInputs.NisvToUser"/>).</param>
    public static KvmVm Create(string name, bool hasMte = false, int ipaBits = DefaultIpaBits, bool nisvToUser = false) =>
        new(name, ImmutableSortedDictionary<int, Memslot>.Empty, Stage2Table.Empty, 0, 0, hasMte, ipaBits, nisvToUser);

    /// <summary>The range KVM mapped itself (kvm_phys_addr_ioremap) that holds gpa, or null.</summary>
    public IoRemap? IoRemapOf(ulong gpa)
    {
        if (IoRemaps is null) return null;
        foreach (var r in IoRemaps)
            if (r.Contains(gpa)) return r;
        return null;
    }

    /// <summary>gfn_to_memslot: the slot covering gpa. (A loop over the dictionary's own enumerator:
    /// on every fault, and LINQ's boxed enumerator, iterator and closure were ~3.5 % of the bytes the
    /// fault pipeline allocated.)</summary>
    public Memslot? SlotFor(ulong gpa)
    {
        foreach (var (_, s) in Memslots)
            if (s.ContainsGpa(gpa)) return s;
        return null;
    }
}

/// <summary>A range KVM mapped at stage 2 itself (kvm_phys_addr_ioremap), outside every memslot and user
/// mapping: [<paramref name="Gpa"/>, <paramref name="End"/>) to device memory at <paramref name="Pa"/>.</summary>
public sealed record IoRemap(ulong Gpa, ulong End, ulong Pa)
{
    public bool Contains(ulong gpa) => gpa >= Gpa && gpa < End;
}

public enum MemslotChange { Create, Delete, Move, FlagsOnly }

/// <summary>Events of a VM.</summary>
/// <param name="Vmas">The VMAs that intersected the slot's userspace range when it was set.</param>
public sealed record MemslotSet(string Vm, Memslot Slot, MemslotChange Change, ImmutableArray<VmaSnapshot> Vmas) : IDomainEvent;
public sealed record MemslotDeleted(string Vm, int Id) : IDomainEvent;
/// <summary>kvm_unmap_gfn_range / kvm_arch_flush_shadow_memslot over [Gpa, End).</summary>
public sealed record Stage2RangeUnmapped(string Vm, ulong Gpa, ulong End) : IDomainEvent;
/// <summary>kvm_phys_addr_ioremap (arch/arm64/kvm/mmu.c): KVM mapped device memory at stage 2 itself, page
/// by page, as KVM_PGTABLE_PROT_DEVICE | R (| W): the GICv2 virtual CPU interface at the VM's GICC address
/// (vgic_v2_map_resources, at the first KVM_RUN). <paramref name="Leaves"/> are the leaves it installed,
/// in order.</summary>
public sealed record Stage2DeviceIoremapped(string Vm, ulong Gpa, ulong Pa, ImmutableArray<Stage2Leaf> Leaves) : IDomainEvent
{
    /// <summary>The end of the range the leaves cover (<see cref="Gpa"/> when there are none).</summary>
    public ulong End => Leaves.IsEmpty ? Gpa : Leaves[^1].EndGpa;
}
/// <summary>kvm_mmu_notifier_invalidate_range_start reached an overlapping memslot: in_progress++.</summary>
public sealed record MmuInvalidateBegan(string Vm, ulong HvaStart, ulong HvaEnd) : IDomainEvent;
/// <summary>kvm_mmu_notifier_invalidate_range_end: mmu_invalidate_seq++, then in_progress--.</summary>
public sealed record MmuInvalidateEnded(string Vm, ulong HvaStart, ulong HvaEnd) : IDomainEvent;
/// <summary>A stage-2 fault decision with its inputs and outcome.</summary>
public sealed record Stage2FaultResolved(DecisionRecord Decision) : IDomainEvent;

/// <summary>The decisions of one fault batch, in the order they were made, as one event: the same as
/// one <see cref="Stage2FaultResolved"/> per decision in that order, with one journal entry for the
/// whole batch. Each record still carries its full inputs and outcome.</summary>
public sealed record Stage2FaultsResolved(DecisionRecord[] Decisions) : IDomainEvent
{
    public bool Equals(Stage2FaultsResolved? other) => other is not null && Decisions.AsSpan().SequenceEqual(other.Decisions);
    public override int GetHashCode() => Decisions.Length == 0 ? 0 : HashCode.Combine(Decisions.Length, Decisions[0]);
}

/// <summary>The stage-2 fault decisions an event holds: one, a batch's, or none.</summary>
public static class DecisionEvents
{
    public static IReadOnlyList<DecisionRecord> Of(IDomainEvent e) => e switch
    {
        Stage2FaultResolved f => [f.Decision],
        Stage2FaultsResolved b => b.Decisions,
        _ => [],
    };

    /// <summary>The events for a batch's decisions: a batch of one is the plain event.</summary>
    public static IDomainEvent For(DecisionRecord[] decisions) =>
        decisions.Length == 1 ? new Stage2FaultResolved(decisions[0]) : new Stage2FaultsResolved(decisions);
}
