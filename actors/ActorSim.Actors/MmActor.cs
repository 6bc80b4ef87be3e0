using System.Runtime.InteropServices;
using ActorSim.Domain;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using Akka.Actor;

namespace ActorSim.Actors;

/// <summary>The VMM process's mm: VMAs and user PTEs (AddressSpace decider). It runs the MMU
/// notifier: before a change that can remove or downgrade PTEs it sends
/// <see cref="MmuInvalidateRangeStart"/> to every subscribed VM and waits for all acks
/// (invalidate_range_start is synchronous in the kernel), then changes the PTEs, then sends
/// <see cref="MmuInvalidateRangeEnd"/>. KVM's pfn lookups go through here; a PFNMAP VMA without a PTE
/// asks its driver's fault handler. While one operation is under way (waiting for acks or a
/// driver) other requests wait in the stash, as they would on mmap_lock.</summary>
public sealed class MmActor : DeciderActor<AddressSpace>
{
    private readonly KernelPolicy _policy;
    private readonly bool _systemSupportsMte;
    private readonly SortedDictionary<string, IActorRef> _subscribers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IActorRef> _devices = new(StringComparer.Ordinal);
    private long _nextInvalidateId;

    // The operation under way: events still to persist in order, acks still awaited, what to do after.
    private Queue<IDomainEvent>? _work;
    private int _acksPending;
    private long _invalidateId;
    private Action? _afterWork;

    // Fault batches (of every VM) that arrived while the mm was busy: taken together as one pass.
    private readonly List<(MmFaultInPfnBatch Request, IActorRef ReplyTo)> _faultBatchesWaiting = [];
    // The pass under way: its batches, the fault being resolved, answers so far, the events produced.
    private FaultPass? _pass;

    private sealed class FaultPass(List<(MmFaultInPfnBatch Request, IActorRef ReplyTo)> batches, AddressSpace working)
    {
        public List<(MmFaultInPfnBatch Request, IActorRef ReplyTo)> Batches { get; } = batches;
        public AddressSpace Working = working;
        public int Batch, Next;
        /// <summary>Per batch, one answer per fault, in the faults' order (sent as they are).</summary>
        public readonly MmPfnAnswer[][] Answers = batches.Select(b => new MmPfnAnswer[b.Request.Faults.Length]).ToArray();
        /// <summary>Every PTE range the pass populated, in order (its journal entry): at most one a fault.</summary>
        public readonly List<PteRange> Populated = new(batches.Sum(b => b.Request.Faults.Length));
        /// <summary>How many of <see cref="Populated"/> are folded into <see cref="Working"/>; the rest
        /// are pending. Folding them one fault at a time copied the VMA's whole range list per fault. A
        /// fault reads the PTEs only at the page it resolves (BeginFaultIn's pte check), so
        /// <see cref="Working"/> answers exactly unless that page is pending; then they are folded first
        /// (<see cref="Fold"/>).</summary>
        private int _folded;

        private Span<PteRange> Pending => CollectionsMarshal.AsSpan(Populated)[_folded..];

        /// <summary>Folds the pending PTEs into <see cref="Working"/> in one batch
        /// (AddressSpaceDecider.PopulatedAll: one copy per VMA).</summary>
        public void Fold()
        {
            if (_folded == Populated.Count) return;
            Working = AddressSpaceDecider.PopulatedAll(Working, Pending);
            _folded = Populated.Count;
        }

        public bool IsPending(ulong hva)
        {
            foreach (var r in Pending)
                if (r.Start <= hva && hva < r.End) return true;
            return false;
        }
        public FaultStart? Waiting;
        public VmaSnapshot? WaitingVma;
        public ulong WaitingPfnHva;
    }

    /// <param name="systemSupportsMte">The host CPU has MTE: anonymous mappings get VM_MTE_ALLOWED
    /// (<see cref="AddressSpaceDecider.CalcVmFlags"/>).</param>
    public MmActor(string persistenceId, KernelPolicy policy, SnapshotPolicy snapshots = default, bool systemSupportsMte = false)
        : base(persistenceId, AddressSpace.Empty(policy.WordSize), snapshots)
    {
        _policy = policy;
        _systemSupportsMte = systemSupportsMte;
        Ready();
    }

    public static Props Props(string persistenceId, KernelPolicy policy, SnapshotPolicy snapshots = default, bool systemSupportsMte = false) =>
        ActorProps.Of(() => new MmActor(persistenceId, policy, snapshots, systemSupportsMte));

    protected override AddressSpace Evolve(AddressSpace state, IDomainEvent e) => AddressSpaceDecider.Evolve(state, e);

    /// <summary>An operation is under way (waiting for notifier acks, a driver's fault answer or its
    /// journal write): other requests wait in the stash, as they would on mmap_lock. A flag rather
    /// than Become: switching behaviour rebuilds the handler table, on every fault pass.</summary>
    private bool _busy;

    /// <summary>Stashes the request if the mm is busy; true if it did.</summary>
    private bool WaitIfBusy()
    {
        if (!_busy) return false;
        Stash.Stash();
        return true;
    }

    private void Ready()
    {
        Command<MmRegisterDevice>(m => { _devices[m.Name] = m.Vfio; Sender.Tell(new MmResult(Errno.None)); });
        Command<MmSubscribeNotifier>(m => { if (!WaitIfBusy()) { _subscribers[m.Vm] = m.Kvm; Sender.Tell(new MmResult(Errno.None)); } });
        Command<MmGetVmas>(m => { if (!WaitIfBusy()) Sender.Tell(new MmVmas(State.VmasIntersecting(m.Start, m.End).ToArray())); });
        Command<MmGetState>(_ => { if (!WaitIfBusy()) Sender.Tell(State); });
        Command<MmInstallVma>(m => { if (!WaitIfBusy()) RunDecision(AddressSpaceDecider.InstallVma(State, m.FixedHva, m.Template), Sender, mapped: true); });
        Command<MmMapRam>(m =>
        {
            if (WaitIfBusy()) return;
            var err = AddressSpaceDecider.CheckMmapArgs(m.FixedHva, m.Length, 0);
            if (err != Errno.None) { Sender.Tell(new MmResult(err)); return; }
            var flags = AddressSpaceDecider.CalcVmFlags(Prot.Read | Prot.Write, shared: false, anonymous: true, _systemSupportsMte);
            var t = new VmaTemplate(m.Length, flags, 0, MairIndex.MT_NORMAL, VmaBacking.Anonymous(0), false);
            RunDecision(AddressSpaceDecider.InstallVma(State, m.FixedHva, t), Sender, mapped: true);
        });
        Command<MmMunmap>(m => { if (!WaitIfBusy()) RunDecision(AddressSpaceDecider.Munmap(State, m.Addr, m.Length), Sender, mapped: false); });
        Command<MmMprotect>(m => { if (!WaitIfBusy()) RunDecision(AddressSpaceDecider.Mprotect(State, m.Addr, m.Length, m.Prot), Sender, mapped: false); });
        Command<MmZapMappingRange>(m => { if (!WaitIfBusy()) RunDecision(AddressSpaceDecider.ZapMappingRange(State, m.Device, m.Regions.ToHashSet()), Sender, mapped: false); });
        // Fault batches wait in a list rather than in the stash, so those of all VMs that came in
        // while the mm was busy are resolved in one pass and written in one journal write.
        Command<MmFaultInPfnBatch>(m =>
        {
            _faultBatchesWaiting.Add((m, Sender));
            if (!_busy) StartFaultPass();
        });
        Command<RunFaultPass>(_ => { if (!_busy) StartFaultPass(); }); // else Resume sends another
        Command<MmuInvalidateAck>(a =>
        {
            // Late acks of an operation that finished are ignored.
            if (!_busy || a.Id != _invalidateId || _acksPending == 0) return;
            if (--_acksPending == 0) Step();
        });
        Command<DriverFaultAnswer>(OnDriverAnswer);
        Command<AnswerPass>(OnAnswerPass);
    }

    private void RunDecision(Decision d, IActorRef replyTo, bool mapped)
    {
        if (!d.Succeeded)
        {
            replyTo.Tell(new MmResult(d.Errno));
            return;
        }
        var hva = mapped ? d.Events.OfType<VmaMapped>().Single().Vma.Start : 0;
        _work = new Queue<IDomainEvent>(d.Events);
        _afterWork = () => replyTo.Tell(new MmResult(Errno.None, hva));
        _busy = true;
        Step();
    }

    /// <summary>Persists the next event of the operation; a notifier start waits for every VM's ack.</summary>
    private void Step()
    {
        if (_work is null || _work.Count == 0)
        {
            var after = _afterWork;
            _work = null;
            _afterWork = null;
            after?.Invoke();
            Resume();
            return;
        }
        var e = _work.Dequeue();
        PersistEvent(e, () =>
        {
            switch (e)
            {
                case MmuNotifierInvalidateRangeStart s when _subscribers.Count > 0:
                    _invalidateId = ++_nextInvalidateId;
                    _acksPending = _subscribers.Count;
                    foreach (var kvm in _subscribers.Values) kvm.Tell(new MmuInvalidateRangeStart(_invalidateId, s.Start, s.End));
                    return; // Step() again when the last ack arrives
                case MmuNotifierInvalidateRangeEnd x:
                    foreach (var kvm in _subscribers.Values) kvm.Tell(new MmuInvalidateRangeEnd(_invalidateId, x.Start, x.End));
                    break;
            }
            Step();
        });
    }

    /// <summary>The mm is free again: the requests that waited go first, in their order; the fault
    /// batches that came in meanwhile then run as one pass (a message to itself, behind them, so
    /// neither starves the other).</summary>
    private void Resume()
    {
        _busy = false;
        Stash.UnstashAll();
        if (_faultBatchesWaiting.Count > 0) Self.Tell(RunFaultPass.Instance);
    }

    private sealed class RunFaultPass
    {
        public static readonly RunFaultPass Instance = new();
    }

    /// <summary>Starts a pass over every fault batch waiting, if any (the mm must be free).</summary>
    private void StartFaultPass()
    {
        if (_faultBatchesWaiting.Count == 0) return;
        _pass = new FaultPass([.. _faultBatchesWaiting], State);
        _faultBatchesWaiting.Clear();
        _busy = true;
        ContinuePass();
    }

    /// <summary>Resolves the pass's faults batch by batch (hva_to_pfn each; a PFNMAP VMA without a PTE
    /// asks its driver and resumes in OnDriverAnswer), then persists all their PTE events in one write
    /// and answers each batch.</summary>
    private void ContinuePass()
    {
        var p = _pass!;
        for (; p.Batch < p.Batches.Count; p.Batch++, p.Next = 0)
        {
            var faults = p.Batches[p.Batch].Request.Faults;
            while (p.Next < faults.Length)
            {
                var f = faults[p.Next];
                var step = KvmFaultPath.ResolvePfn(p.Working, f, out var vma, out var pfnHva);
                if (p.IsPending(pfnHva))
                {
                    // Its page was populated earlier in this pass: resolve it against the folded state.
                    p.Fold();
                    step = KvmFaultPath.ResolvePfn(p.Working, f, out vma, out pfnHva);
                }
                if (step.NeedsDriverFault is { } dv)
                {
                    if (dv.Backing.Device is { } dev && _devices.TryGetValue(dev, out var vfio))
                    {
                        p.Waiting = f;
                        p.WaitingVma = vma;
                        p.WaitingPfnHva = pfnHva;
                        vfio.Tell(new VfioMmapFault(dv.Start, dv.End, pfnHva));
                        return; // resumes in OnDriverAnswer
                    }
                    p.Fold();
                    step = AddressSpaceDecider.CompleteFaultIn(p.Working, pfnHva, DriverFaultAnswer.SigBus);
                }
                Record(p, step, vma, pfnHva);
            }
        }
        _pass = null;
        p.Fold();
        // One journal entry for the PTEs of the whole pass (AddressSpaceDecider.PopulatedEvents).
        // The answers go out as soon as the write has been handed to the journal — from the next
        // message, since the write leaves when this one's handling ends — but the mm stays busy until
        // the write is durable. It must: a persistent actor has one journal write in flight at a time,
        // so a second pass's write would wait inside Akka while its answers went out, and the VMs'
        // decisions could reach the journal before the PTEs they used (a kill -9 then left leaves
        // without PTEs: I4 on --resume). With one mm write at a time the journal, which commits writes
        // in the order they come, puts each VM's decisions in the same commit as these PTEs or a later
        // one. The PTE events are published now, so the invariant checker sees them before the
        // decisions that used them.
        PersistPipelined(AddressSpaceDecider.PopulatedEvents(p.Populated), p.Working, Resume);
        Self.Tell(new AnswerPass(p));
    }

    private sealed record AnswerPass(FaultPass Pass);

    private void OnAnswerPass(AnswerPass a)
    {
        var p = a.Pass;
        for (var i = 0; i < p.Batches.Count; i++)
            p.Batches[i].ReplyTo.Tell(new MmPfnBatchAnswer(p.Batches[i].Request.BatchId, p.Answers[i]));
    }

    private static void Record(FaultPass p, FaultInStep step, VmaSnapshot? vma, ulong pfnHva)
    {
        if (step.Populated is { } r) p.Populated.Add(r);
        p.Answers[p.Batch][p.Next++] = new MmPfnAnswer(vma, pfnHva, step.Lookup);
    }

    private void OnDriverAnswer(DriverFaultAnswer answer)
    {
        if (_pass is not { Waiting: not null } p) return;
        p.Fold();
        var step = AddressSpaceDecider.CompleteFaultIn(p.Working, p.WaitingPfnHva, answer);
        Record(p, step, p.WaitingVma, p.WaitingPfnHva);
        p.Waiting = null;
        ContinuePass();
    }
}
