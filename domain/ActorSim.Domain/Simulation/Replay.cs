using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Stage2;

namespace ActorSim.Domain.Simulation;

/// <summary>A decision whose recomputed outcome differs from the recorded one.</summary>
public sealed record ReplayMismatch(long Seq, string Stream, FaultOutcome Recorded, FaultOutcome Recomputed);

/// <summary>A decision re-decided under another kernel policy that came out differently.</summary>
public sealed record ReplayChange(long Seq, string Stream, string Vm, ulong Gpa, AccessOp Op, string Before, string After);

/// <summary>Folds a run's events in global order through the deciders and checks every decision
/// record against <see cref="KvmHandleGuestAbort.Decide"/> — the same function the actors call.
/// With <see cref="Policy"/> set, each decision is also re-decided under that policy and the
/// differences are collected.</summary>
public sealed class Replay
{
    private readonly Dictionary<string, KvmVm> _vms = new(StringComparer.Ordinal);
    private readonly Dictionary<string, AddressSpace> _mms = new(StringComparer.Ordinal);
    private readonly List<ReplayChange> _changes = [];
    // One stage-2 edit per VM replica, kept across events (Stage2Edit); dropped when Vms hands them out.
    private readonly Dictionary<string, Stage2Edit> _edits = new(StringComparer.Ordinal);

    public Replay(Func<KernelPolicy, KernelPolicy>? policy = null) => Policy = policy;

    /// <summary>Maps a decision's recorded policy to the policy to re-decide under, or null.</summary>
    public Func<KernelPolicy, KernelPolicy>? Policy { get; }
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
                var again = KvmHandleGuestAbort.Decide(d.Inputs with { Policy = other });
                var before = Describe(d.Outcome, d.Inputs.Policy.Cpu.Fwb);
                var after = Describe(again, other.Cpu.Fwb);
                if (before != after) _changes.Add(new ReplayChange(seq, stream, d.Inputs.Vm, d.Inputs.Gpa, d.Inputs.Op, before, after));
            }
        }
        // Fold: VM streams ("...kvm-NAME") into KvmVm, mm streams into AddressSpace.
        var name = stream[(stream.LastIndexOf('/') + 1)..];
        if (name.StartsWith("kvm-", StringComparison.Ordinal))
        {
            var vm = name[4..];
            if (!_edits.TryGetValue(vm, out var edit)) _edits[vm] = edit = new Stage2Edit();
            _vms[vm] = KvmVmDecider.Evolve(_vms.TryGetValue(vm, out var v) ? v : KvmVm.Create(vm), e, edit);
        }
        else if (name.StartsWith("mm-", StringComparison.Ordinal))
        {
            _mms[name] = AddressSpaceDecider.Evolve(_mms.TryGetValue(name, out var m) ? m : AddressSpace.Empty(), e);
        }
    }
}
