using ActorSim.Domain;
using ActorSim.Domain.Invariants;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Vfio;
using Akka.Actor;
using Akka.Persistence;

namespace ActorSim.Actors;

/// <summary>Watches every persisted event (EventStream), folds them into a replica of the whole host
/// (mm, devices, VMs) and checks kernel-model.md §7 after each one: the event predicates on the event,
/// the state predicates on the replica. A violation is an event of its own
/// (<see cref="InvariantViolationDetected"/>, persisted in the checker's stream) carrying the sequence
/// number of the offending event; it is also published as <see cref="InvariantViolated"/> and kept for
/// <see cref="GetViolations"/>. Its own events are not re-checked.</summary>
public sealed class InvariantChecker : ReceivePersistentActor
{
    private readonly KernelPolicy _policy;
    private readonly Dictionary<string, string> _streamToDevice = [];
    private readonly Dictionary<string, string> _streamToVm = [];
    private readonly Dictionary<string, VfioDevice> _devices = [];
    private readonly Dictionary<string, KvmVm> _vms = [];
    // One stage-2 edit per VM replica, kept for the checker's life: the replicas never leave it, so
    // their nodes are changed in place after the first copy (Stage2Edit).
    private readonly Dictionary<string, Stage2Edit> _edits = [];
    // Per VM, the base IPAs of the leaves it installed over device memory (a pfn outside RAM), so a
    // device that stops decoding rechecks those and not every leaf. Only faults install leaves; an
    // entry whose leaf has gone is dropped when next looked at.
    private readonly Dictionary<string, HashSet<ulong>> _deviceLeaves = [];
    private readonly List<InvariantViolated> _violations = [];
    private readonly List<Violation> _found = []; // an event's state check's findings, reused event by event
    private readonly HashSet<string> _reported = [];
    private AddressSpace _mm;
    private SystemView? _view;
    private readonly string _mmStream;
    private long _seq;

    /// <param name="devices">persistence id → initial device.</param>
    /// <param name="vms">persistence id → initial VM.</param>
    public override string PersistenceId { get; }

    public InvariantChecker(string persistenceId, KernelPolicy policy, string mmStream, IReadOnlyDictionary<string, VfioDevice> devices, IReadOnlyDictionary<string, KvmVm> vms)
    {
        PersistenceId = persistenceId;
        _policy = policy;
        _mmStream = mmStream;
        _mm = AddressSpace.Empty(policy.WordSize);
        foreach (var (stream, d) in devices) { _streamToDevice[stream] = d.Name; _devices[d.Name] = d; }
        foreach (var (stream, v) in vms)
        {
            _streamToVm[stream] = v.Name;
            _vms[v.Name] = v;
            _deviceLeaves[v.Name] = [.. v.Stage2.Leaves.Where(l => !PhysMap.PfnIsMapMemory(l.Pfn)).Select(l => l.Gpa)];
        }
        Command<DomainEventPublished>(p => { if (p.Stream != PersistenceId) OnEvent(p); });
        Command<GetViolations>(_ => Sender.Tell(new Violations([.. _violations], _seq)));
        Command<CheckerWarmUp>(w =>
        {
            foreach (var p in w.Events)
            {
                _seq++;
                Fold(p.Stream, p.Event);
            }
            Sender.Tell(new Violations([.. _violations], _seq));
        });
        Recover<InvariantViolationDetected>(e => _violations.Add(new InvariantViolated(e.Seq, e.Stream, new Violation(e.Invariant, e.Detail))));
    }

    public static Props Props(string persistenceId, KernelPolicy policy, string mmStream, IReadOnlyDictionary<string, VfioDevice> devices, IReadOnlyDictionary<string, KvmVm> vms) =>
        ActorProps.Of(() => new InvariantChecker(persistenceId, policy, mmStream, devices, vms));

    protected override void PreStart() => Context.System.EventStream.Subscribe(Self, typeof(DomainEventPublished));
    protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);

    private void OnEvent(DomainEventPublished p)
    {
        var seq = ++_seq;
        Fold(p.Stream, p.Event);
        foreach (var v in Invariants.CheckEvent(p.Event)) Report(seq, p.Stream, v);
        // State predicates, incrementally: after an event that can take something away from a mapping
        // (Invariants.NeedsFullCheck) the leaves it can reach — those over the user range it changed, or
        // those over device memory when a device stops decoding, or every leaf after a memslot change —
        // else only the leaf a fault just installed. What the others showed cannot have changed.
        // The devices and VMs are this checker's own dictionaries, changed in place: a new view only
        // when the mm's state is a new object.
        var view = _view is { } last && ReferenceEquals(last.Mm, _mm) ? last : _view = new SystemView(_policy, _mm, _devices, _vms);
        var state = _found;
        state.Clear();
        switch (p.Event)
        {
            case VmaRangeUnmapped u: Invariants.CheckUserRange(view, u.Start, u.End, state); break;
            case VmaProtectionChanged c: Invariants.CheckUserRange(view, c.Start, c.End, state); break;
            case UserPtesZapped z: Invariants.CheckUserRange(view, z.Start, z.End, state); break;
            case VfioMemoryToggled { Enabled: false } or VfioPowerStateChanged: CheckDeviceLeaves(view, state); break;
            case var e when Invariants.NeedsFullCheck(e): state.AddRange(Invariants.CheckState(view)); break;
            default:
                // The leaves the event's decisions installed, as they stand after the whole event.
                foreach (var d in DecisionEvents.Of(p.Event))
                    if (d.Outcome.Leaf is { } leaf && _vms.TryGetValue(d.Inputs.Vm, out var vm) && vm.Stage2.Lookup(leaf.Gpa) is { } now)
                        Invariants.CheckLeaf(view, vm, now, state);
                break;
        }
        foreach (var v in state)
            if (_reported.Add(v.ToString())) Report(seq, p.Stream, v); // a lasting bad state is reported once
    }

    /// <summary>A device's memory stopped decoding (I6 looks at the device a leaf's pfn belongs to):
    /// the leaves over device memory, in every VM.</summary>
    private void CheckDeviceLeaves(SystemView view, List<Violation> found)
    {
        foreach (var (name, gpas) in _deviceLeaves)
        {
            var vm = _vms[name];
            gpas.RemoveWhere(gpa => vm.Stage2.Lookup(gpa) is not { } l || l.Gpa != gpa || PhysMap.PfnIsMapMemory(l.Pfn));
            foreach (var gpa in gpas) Invariants.CheckLeaf(view, vm, vm.Stage2.Lookup(gpa)!.Value, found);
        }
    }

    private void Report(long seq, string stream, Violation v)
    {
        var e = new InvariantViolated(seq, stream, v);
        _violations.Add(e);
        Persist(new InvariantViolationDetected(seq, stream, v.Invariant, v.Detail), x =>
        {
            Context.System.EventStream.Publish(new DomainEventPublished(PersistenceId, x, SimClock.Now(Context.System)));
            Context.System.EventStream.Publish(e);
        });
    }

    private void Fold(string stream, IDomainEvent e)
    {
        if (stream == _mmStream) _mm = AddressSpaceDecider.Evolve(_mm, e);
        else if (_streamToDevice.TryGetValue(stream, out var d)) _devices[d] = VfioDeviceDecider.Evolve(_devices[d], e);
        else if (_streamToVm.TryGetValue(stream, out var v))
        {
            if (!_edits.TryGetValue(v, out var edit)) _edits[v] = edit = new Stage2Edit();
            _vms[v] = KvmVmDecider.Evolve(_vms[v], e, edit);
            foreach (var r in DecisionEvents.Of(e))
                if (r.Outcome.Leaf is { } leaf && !PhysMap.PfnIsMapMemory(leaf.Pfn)) _deviceLeaves[v].Add(leaf.Gpa);
        }
    }
}
