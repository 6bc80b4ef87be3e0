using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Stage2;
using ActorSim.Domain.Vfio;

namespace ActorSim.Domain.Simulation;

/// <summary>A decision whose recomputed outcome differs from the recorded one.</summary>
public sealed record ReplayMismatch(long Seq, string Stream, FaultOutcome Recorded, FaultOutcome Recomputed);

/// <summary>A decision re-decided under another kernel policy that came out differently.</summary>
/// <param name="Syndrome">The abort's syndrome bits beside the op (<see cref="FaultInputs.Nisv"/>,
/// <see cref="FaultInputs.S1ptw"/>, <see cref="FaultInputs.Cm"/>).</param>
public sealed record ReplayChange(long Seq, string Stream, string Vm, ulong Gpa, AccessOp Op, string Before, string After,
    AbortSyndrome Syndrome = AbortSyndrome.None)
{
    /// <summary>The access was a data abort without a valid syndrome.</summary>
    public bool Nisv => Syndrome.HasFlag(AbortSyndrome.Nisv);
}

/// <summary>A memslot the run set that the other policy's KVM_SET_USER_MEMORY_REGION refuses (6.17 without
/// FWB and DIC: a cacheable PFNMAP VMA in it, -EINVAL).</summary>
public sealed record ReplayMemslotRefused(long Seq, string Stream, string Vm, int Slot, ulong Gpa, ulong Size, Errno Errno);

/// <summary>Folds a run's events in global order through the deciders and checks every decision
/// record against <see cref="KvmHandleGuestAbort.Decide"/> — the same function the actors call.
/// With <see cref="Policy"/> set, each decision is also re-decided under that policy and the
/// differences are collected.</summary>
public sealed class Replay
{
    private readonly Dictionary<string, KvmVm> _vms = new(StringComparer.Ordinal);
    private readonly Dictionary<string, AddressSpace> _mms = new(StringComparer.Ordinal);
    private readonly List<ReplayChange> _changes = [];
    private readonly List<ReplayMemslotRefused> _memslotsRefused = [];
    // Every VMA mmapped, in order, when re-deciding (VmaUnder): what made a VMA unmapped since.
    private readonly List<Vma> _mapped = [];
    // One stage-2 edit per VM replica, kept across events (Stage2Edit); dropped when Vms hands them out.
    private readonly Dictionary<string, Stage2Edit> _edits = new(StringComparer.Ordinal);
    // Each VM as the other policy's decisions leave its stage-2 table (ReDecide), when re-deciding.
    private readonly Dictionary<string, KvmVm> _otherVms = new(StringComparer.Ordinal);
    // The memslots the other policy refused (MemslotUnder) that the run still has, by VM and id: the faults
    // in them find no memslot under that policy.
    private readonly HashSet<(string Vm, int Id)> _refusedSlots = [];

    /// <param name="policy">Maps a recorded policy to the policy to re-decide under, or null.</param>
    /// <param name="recorded">The policy the run was recorded under (its header's), for what carries none:
    /// with it and <paramref name="policy"/>, each memslot set is decided again under the other policy.</param>
    public Replay(Func<KernelPolicy, KernelPolicy>? policy = null, KernelPolicy? recorded = null)
    {
        Policy = policy;
        Recorded = recorded;
    }

    /// <summary>Maps a decision's recorded policy to the policy to re-decide under, or null.</summary>
    public Func<KernelPolicy, KernelPolicy>? Policy { get; }
    /// <summary>The policy the run was recorded under, or null (then memslots are not decided again).</summary>
    public KernelPolicy? Recorded { get; }
    /// <summary>The memslots the run set that the other policy refuses, in order. The faults in them are
    /// re-decided as finding no memslot (kvm_handle_guest_abort: an MMIO exit, an exec an injected abort),
    /// until the run sets that slot again as the other policy accepts it.</summary>
    public IReadOnlyList<ReplayMemslotRefused> MemslotsRefused => _memslotsRefused;
    public long Events { get; private set; }
    public long Decisions { get; private set; }
    public ReplayMismatch? FirstMismatch { get; private set; }
    public long Mismatches { get; private set; }
    public IReadOnlyList<ReplayChange> Changes => _changes;
    /// <summary>The VMs as folded so far; they stay as they are when more events are applied.</summary>
    public IReadOnlyDictionary<string, KvmVm> Vms
    {
        get
        {
            _edits.Clear();
            return new Dictionary<string, KvmVm>(_vms, StringComparer.Ordinal);
        }
    }

    /// <summary>Outcome as "Result MemType" (e.g. "Mapped Normal-NC", "GuestAbort", "Error EFAULT").</summary>
    public static string Describe(FaultOutcome o, bool fwb) => o switch
    {
        { Leaf: { } l } when MemAttr.TypeOf(l.MemAttr, fwb) is { } t => $"{o.Result} {MemAttr.MemTypeOf(t).Name()}",
        { Errno: not Errno.None } => $"{o.Result} {o.Errno}",
        _ => o.Result.ToString(),
    };

    /// <summary>The decision's VMA as <paramref name="other"/>'s driver would have made it. VM_ALLOW_ANY_UNCACHED
    /// is the driver's choice at mmap, from v6.9 (<see cref="VfioDeviceDecider.SetsAllowAnyUncached"/>): a run
    /// recorded under 6.8 has BARs without it, which 6.9 would have mapped Normal-NC; re-decided with the VMA
    /// as recorded, `replay --kernel 6.9` of a 6.8 run said no decision changes. What made the VMA comes from
    /// the mm's VMAs as folded (the one at the fault's hva), else from the last one mmapped there.</summary>
    private VmaSnapshot? VmaUnder(FaultInputs i, KernelPolicy other)
    {
        if (i.Vma is not { } vma) return null;
        var made = Made(i.Hva);
        if (made is not { } m) return vma; // not mmapped in this log: as recorded
        var flag = VfioDeviceDecider.SetsAllowAnyUncached(m.Kind, m.S1) ? other.AllowAnyUncachedFlag : VmFlags.VM_NONE;
        // The recorded kernel's flag off first: 6.8's driver sets none (its user_mem_abort reads none either).
        return vma with { Flags = (vma.Flags & ~i.Policy.AllowAnyUncachedFlag) | flag };
    }

    private (BackingKind Kind, MairIndex S1)? Made(ulong hva)
    {
        foreach (var mm in _mms.Values)
            if (mm.VmaLookup(hva) is { } v) return (v.Backing.Kind, v.S1);
        // Unmapped before this decision's event (a fault that raced munmap): the last mmap that covered hva.
        for (var j = _mapped.Count - 1; j >= 0; j--)
            if (_mapped[j].Start <= hva && hva < _mapped[j].End) return (_mapped[j].Backing.Kind, _mapped[j].S1);
        return null;
    }

    /// <summary>The fault decided under <paramref name="other"/>, on its VM's stage-2 table as <paramref name="other"/>'s
    /// decisions left it (then updated with this one). Re-decided on the recorded leaf, a 6.9 run under 6.17 had
    /// an exec fault relax the permissions of the Device-nGnRE leaf 6.9 put on USEMEM, where 6.17 had mapped it
    /// Normal-WB and executable (with DIC): the access would not have faulted at all.</summary>
    private FaultOutcome ReDecide(FaultInputs recorded, KernelPolicy other)
    {
        var vm = _otherVms.TryGetValue(recorded.Vm, out var v) ? v : KvmVm.Create(recorded.Vm);
        var found = vm.Stage2.Lookup(recorded.Gpa);
        // The other's leaf lets the access through: no stage-2 fault, the access finds its page mapped.
        if (LeafUnder(recorded, found) is not { } leafUnder)
            return new(FaultResult.AlreadyMapped, Errno.None, found, default, DecisionPath.NoFault);
        var inputs = leafUnder with { Policy = other, Vma = VmaUnder(recorded, other), Slot = SlotUnder(recorded) };
        var again = KvmHandleGuestAbort.Decide(inputs);
        _otherVms[recorded.Vm] = KvmVmDecider.Resolved(vm, new DecisionRecord(inputs, again));
        return again;
    }

    /// <summary>The fault's memslot, or none where the other policy refused it.</summary>
    private Memslot? SlotUnder(FaultInputs i) => i.Slot is { } s && _refusedSlots.Contains((i.Vm, s.Id)) ? null : i.Slot;

    /// <summary>The fault's inputs with <paramref name="leaf"/>, the other policy's leaf at its IPA, for the
    /// run's; null when that leaf permits the access (no fault). The fault is what the other's leaf makes it
    /// (a permission fault at its level, a translation fault without one), unless in the run the leaf
    /// changed between the fault and mmu_lock (another vCPU mapped or relaxed it, or an unmap took it):
    /// then it is taken to have changed in the other too, and only the leaf found under mmu_lock is the
    /// other's. Where the two tables agree, these are the recorded inputs. The vCPU's access is the run's;
    /// when it came is the run's order.</summary>
    private static FaultInputs? LeafUnder(FaultInputs recorded, Stage2Leaf? leaf)
    {
        if (ChangedBeforeLock(recorded)) return recorded with { ExistingLeaf = leaf };
        if (leaf is { } l && l.Permits(KvmEmulate.Needs(recorded))) return null;
        return recorded with { FaultIsPerm = leaf is not null, FaultLevel = leaf?.Level ?? 3, ExistingLeaf = leaf };
    }

    /// <summary>The leaf under mmu_lock cannot be the one the fault was taken on (KvmFaultPath.Begin's covering
    /// leaf, which did not permit the access): a translation fault found a leaf, a permission fault found
    /// none or one that permits the access.</summary>
    private static bool ChangedBeforeLock(FaultInputs i) => i.ExistingLeaf is { } l ? !i.FaultIsPerm || l.Permits(KvmEmulate.Needs(i)) : i.FaultIsPerm;

    /// <summary>KVM_SET_USER_MEMORY_REGION of a memslot the run set, decided again (KvmVmDecider, the VM as
    /// folded so far) under the recorded policy and under <paramref name="other"/>: refused by the other
    /// alone, it is reported and its faults find no memslot; accepted by both (a refused slot set again), its
    /// faults find it again. Both, because the fold knows a VM only from its events (not its IPA size or
    /// MTE), so only what the policy changes is the policy's. A refused slot set again is decided as the
    /// run's change of it (a move or flags change), not as the other's creation of it.</summary>
    private void MemslotUnder(long seq, string stream, MemslotSet set, KernelPolicy recorded, KernelPolicy other)
    {
        var vm = _vms.TryGetValue(set.Vm, out var v) ? v : KvmVm.Create(set.Vm);
        var s = set.Slot;
        Errno Decide(KernelPolicy p) => KvmVmDecider.SetUserMemoryRegion(vm, p, s.Id, s.Flags, s.BaseGpa, s.Size, s.UserspaceAddr, set.Vmas).Errno;
        if (Decide(recorded) == Errno.None && Decide(other) is var refused and not Errno.None)
        {
            _memslotsRefused.Add(new ReplayMemslotRefused(seq, stream, set.Vm, s.Id, s.BaseGpa, s.Size, refused));
            _refusedSlots.Add((set.Vm, s.Id));
        }
        else _refusedSlots.Remove((set.Vm, s.Id));
    }

    public void Apply(long seq, string stream, IDomainEvent e)
    {
        Events++;
        var decisions = DecisionEvents.Of(e);
        for (var i = 0; i < decisions.Count; i++)
        {
            var d = decisions[i];
            Decisions++;
            var recomputed = KvmHandleGuestAbort.Decide(d.Inputs);
            if (recomputed != d.Outcome)
            {
                Mismatches++;
                FirstMismatch ??= new ReplayMismatch(seq, stream, d.Outcome, recomputed);
            }
            if (Policy is { } p)
            {
                var other = p(d.Inputs.Policy);
                var before = Describe(d.Outcome, d.Inputs.Policy.Cpu.Fwb);
                var after = Describe(ReDecide(d.Inputs, other), other.Cpu.Fwb);
                if (before != after) _changes.Add(new ReplayChange(seq, stream, d.Inputs.Vm, d.Inputs.Gpa, d.Inputs.Op, before, after, KvmEmulate.Syndrome(d.Inputs)));
            }
        }
        if (e is MemslotSet set && Policy is { } redecide && Recorded is { } recorded) MemslotUnder(seq, stream, set, recorded, redecide(recorded));
        // The notifier's and the memslot's unmaps take the other policy's leaves as they took the run's.
        if (e is Stage2RangeUnmapped u && Policy is not null && _otherVms.TryGetValue(u.Vm, out var otherVm))
            _otherVms[u.Vm] = KvmVmDecider.Evolve(otherVm, u);
        // Fold: VM streams ("...kvm-NAME") into KvmVm, mm streams into AddressSpace.
        var name = stream[(stream.LastIndexOf('/') + 1)..];
        if (name.StartsWith(EventStreams.Kvm, StringComparison.Ordinal))
        {
            var vm = name[EventStreams.Kvm.Length..];
            if (!_edits.TryGetValue(vm, out var edit)) _edits[vm] = edit = new Stage2Edit();
            _vms[vm] = KvmVmDecider.Evolve(_vms.TryGetValue(vm, out var v) ? v : KvmVm.Create(vm), e, edit);
        }
        else if (name.StartsWith(EventStreams.Mm, StringComparison.Ordinal))
        {
            _mms[name] = AddressSpaceDecider.Evolve(_mms.TryGetValue(name, out var m) ? m : AddressSpace.Empty(), e);
            if (Policy is not null && e is VmaMapped mapped) _mapped.Add(mapped.Vma);
        }
    }
}
