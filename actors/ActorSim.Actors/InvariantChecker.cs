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
    private readonly List<InvariantViolated> _violations = [];
    private readonly HashSet<string> _reported = [];
    private AddressSpace _mm;
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
        foreach (var (stream, v) in vms) { _streamToVm[stream] = v.Name; _vms[v.Name] = v; }
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
        // State predicates, incrementally: every leaf after an event that can take something away
        // from a mapping, else only the leaf a fault just installed (Invariants.NeedsFullCheck).
        var view = new SystemView(_policy, _mm, _devices, _vms);
        IReadOnlyList<Violation> state;
        if (Invariants.NeedsFullCheck(p.Event)) state = Invariants.CheckState(view);
        else
        {
            // The leaves the event's decisions installed, as they stand after the whole event.
            var found = new List<Violation>();
            foreach (var d in DecisionEvents.Of(p.Event))
                if (d.Outcome.Leaf is { } leaf && _vms.TryGetValue(d.Inputs.Vm, out var vm) && vm.Stage2.Lookup(leaf.Gpa) is { } now)
                    Invariants.CheckLeaf(view, vm, now, found);
            state = found;
        }
        foreach (var v in state)
            if (_reported.Add(v.ToString())) Report(seq, p.Stream, v); // a lasting bad state is reported once
    }

    private void Report(long seq, string stream, Violation v)
    {
        var e = new InvariantViolated(seq, stream, v);
        _violations.Add(e);
        Persist(new InvariantViolationDetected(seq, stream, v.Invariant, v.Detail), x =>
        {
            Context.System.EventStream.Publish(new DomainEventPublished(PersistenceId, x));
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
        }
    }
}
