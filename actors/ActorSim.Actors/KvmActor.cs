using ActorSim.Domain;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Simulation;
using Akka.Actor;

namespace ActorSim.Actors;

/// <summary>One VM (KvmVm decider): memslots, the stage-2 table, mmu_invalidate_seq. A fault batch
/// runs in the kernel's three phases: sample (KvmFaultPath.Begin, which reads mmu_invalidate_seq),
/// one round trip to the mm for the pfns, then decide under "mmu_lock" (KvmFaultPath.Complete) with
/// the state as it is when the answer arrives: an invalidation that ran in between makes the fault
/// retry. A memslot change waits until no fault is in flight (the srcu synchronisation of
/// kvm_set_memslot), and new faults wait behind it.</summary>
public sealed class KvmActor : DeciderActor<KvmVm>
{
    private readonly KernelPolicy _policy;
    private readonly IActorRef _mm;
    private readonly Dictionary<long, (KvmFaultBatch Batch, FaultStart[] Starts, IActorRef ReplyTo)> _inFlight = [];
    private bool _memslotInProgress; // a memslot change is waiting for the mm's VMAs
    private bool _memslotWaiting;    // a memslot change waits for faults in flight; new faults wait behind it
    private long _nextMmBatch;

    private (KvmSetMemslot Request, IActorRef ReplyTo)? _memslotRequest;

    private readonly bool _skipInvalidateRetry;

    /// <summary>The stage-2 edit of this actor's state, kept across batches (Stage2Edit): a table node
    /// is copied the first time a change reaches it, then changed in place, instead of being copied
    /// once per batch. Started anew whenever the state is handed out (<see cref="HandOut"/>).</summary>
    private Stage2Edit _edit = new();

    public KvmActor(string persistenceId, KvmVm initial, KernelPolicy policy, IActorRef mm, SnapshotPolicy snapshots = default, string? testFault = null) : base(persistenceId, initial, snapshots)
    {
        _skipInvalidateRetry = testFault == "skip-invalidate-retry";
        _policy = policy;
        _mm = mm;
        Command<KvmSetMemslot>(OnSetMemslot);
        Command<KvmVgicV2MapResources>(OnVgicV2MapResources);
        Command<MmVmas>(OnVmasForMemslot);
        Command<MmuInvalidateRangeStart>(m =>
        {
            var mm = Sender;
            PersistEvents(KvmVmDecider.InvalidateRangeStart(State, m.Start, m.End).Events, () => mm.Tell(new MmuInvalidateAck(m.Id, State.Name)));
        });
        Command<MmuInvalidateRangeEnd>(m => PersistEvents(KvmVmDecider.InvalidateRangeEnd(State, m.Start, m.End).Events, () => { }));
        Command<KvmFaultBatch>(OnFaultBatch);
        Command<MmPfnBatchAnswer>(OnPfnAnswer);
        Command<KvmGetLeaf>(m =>
        {
            var replyTo = Sender;
            WhenDurable(() => replyTo.Tell(new KvmLeaf(State.Stage2.Lookup(m.Gpa))));
        });
        Command<KvmGetState>(_ =>
        {
            var replyTo = Sender;
            WhenDurable(() => replyTo.Tell(HandOut()));
        });
    }

    public static Props Props(string persistenceId, KvmVm initial, KernelPolicy policy, IActorRef mm, SnapshotPolicy snapshots = default, string? testFault = null) =>
        ActorProps.Of(() => new KvmActor(persistenceId, initial, policy, mm, snapshots, testFault));

    protected override KvmVm Evolve(KvmVm state, IDomainEvent e) => KvmVmDecider.Evolve(state, e, _edit);

    /// <summary>The state goes out (a snapshot, a state query): later changes copy what they touch, so
    /// what went out stays as it was.</summary>
    protected override KvmVm HandOut()
    {
        _edit = new Stage2Edit();
        return State;
    }

    /// <summary>A change that takes mmu_lock for write (a memslot, KVM's own mapping) waits for the faults in
    /// flight and for a memslot change under way: then the message is stashed and this is true. New faults
    /// wait behind it, so the change is not starved.</summary>
    private bool StashedBehindFaults()
    {
        if (!_memslotInProgress && _inFlight.Count == 0) return false;
        _memslotWaiting = true;
        Stash.Stash();
        return true;
    }

    private void OnSetMemslot(KvmSetMemslot m)
    {
        if (StashedBehindFaults()) return;
        _memslotInProgress = true;
        _memslotRequest = (m, Sender);
        // kvm_arch_prepare_memory_region walks the VMAs of the range under mmap_read_lock. A plain
        // Tell, not Ask/PipeTo, so the order of messages never depends on thread-pool timing.
        _mm.Tell(new MmGetVmas(m.Hva, m.Hva + m.Size), Self);
    }

    /// <summary>kvm_phys_addr_ioremap takes mmu_lock for write: it waits as a memslot change does.</summary>
    private void OnVgicV2MapResources(KvmVgicV2MapResources m)
    {
        if (StashedBehindFaults()) return;
        var replyTo = Sender;
        var d = KvmVmDecider.VgicV2MapResources(State, _policy, m.CpuBase);
        if (d.Succeeded) PersistEvents(d.Events, () => replyTo.Tell(new KvmResult(d.Errno)));
        else replyTo.Tell(new KvmResult(d.Errno));
    }

    private void OnVmasForMemslot(MmVmas vmas)
    {
        if (_memslotRequest is not { } v) return;
        _memslotRequest = null;
        var m = v.Request;
        var d = KvmVmDecider.SetUserMemoryRegion(State, _policy, m.Slot, m.Flags, m.Gpa, m.Size, m.Hva,
            vmas.Vmas.Select(x => x.Snapshot()).ToArray());
        void Done()
        {
            _memslotInProgress = false;
            _memslotWaiting = false;
            Stash.UnstashAll();
            v.ReplyTo.Tell(new KvmResult(d.Errno));
        }
        if (d.Succeeded) PersistEvents(d.Events, Done);
        else Done();
    }

    private void OnFaultBatch(KvmFaultBatch b)
    {
        if (_memslotInProgress || _memslotWaiting)
        {
            Stash.Stash();
            return;
        }
        var starts = new FaultStart[b.Aborts.Length];
        var mmCount = 0;
        for (var i = 0; i < starts.Length; i++)
        {
            var a = b.Aborts[i];
            starts[i] = KvmFaultPath.Begin(State, a.Vcpu, a.Gpa, a.Op, a.Syndrome);
            if (starts[i].NeedsPfn(State.IpaBits)) mmCount++;
        }
        var needMm = mmCount == starts.Length ? starts : new FaultStart[mmCount];
        if (mmCount < starts.Length)
            for (int i = 0, n = 0; n < mmCount; i++)
                if (starts[i].NeedsPfn(State.IpaBits)) needMm[n++] = starts[i];
        var id = ++_nextMmBatch;
        _inFlight[id] = (b, starts, Sender);
        if (needMm.Length == 0) OnPfnAnswer(new MmPfnBatchAnswer(id, []));
        else _mm.Tell(new MmFaultInPfnBatch(id, needMm), Self);
    }

    /// <summary>Phase 3: decide each fault against the state as it is now, each seeing the leaves the
    /// earlier ones of the batch installed; persist the batch in one write; answer the batcher.</summary>
    private void OnPfnAnswer(MmPfnBatchAnswer a)
    {
        if (!_inFlight.Remove(a.BatchId, out var f)) return;
        var working = State;
        // The actor's edit: the batch's decisions change in place the stage-2 nodes it made and copy
        // the others once; only the last `working` is kept (it becomes State).
        var edit = _edit;
        var results = new AccessResult[f.Starts.Length];
        var decisions = new DecisionRecord[f.Starts.Length]; // the event's array, trimmed if some did not fault
        var made = 0;
        var next = 0;
        for (var i = 0; i < f.Starts.Length; i++)
        {
            var start = f.Starts[i];
            if (start.NoFault)
            {
                results[i] = new AccessResult(null, new FaultOutcome(FaultResult.AlreadyMapped, Errno.None, start.CoveringLeaf, default, DecisionPath.NoFault));
                continue;
            }
            var answer = start.NeedsPfn(working.IpaBits) ? a.Answers[next++] : MmPfnAnswer.None;
            var record = KvmFaultPath.Complete(working, _policy, start, answer);
            if (_skipInvalidateRetry && record.Outcome.Path == DecisionPath.InvalidateRetry)
            {
                // TEST FAULT: act as a kernel without the mmu_invalidate_retry check would, keeping the
                // real inputs. The checker must report this (I5, and usually I4).
                var broken = record.Inputs with { SeqAtLock = record.Inputs.SampledSeq, InProgressAtLock = 0 };
                record = record with { Outcome = KvmHandleGuestAbort.Decide(broken) };
            }
            working = KvmVmDecider.Resolved(working, record, edit);
            decisions[made++] = record;
            results[i] = new AccessResult(record, record.Outcome);
        }
        // One event for the batch's decisions: one journal entry, one row, one message to the checker.
        // Pipelined (DeciderActor.PersistPipelined): the state moves on at once, so invalidations and
        // memslot changes are taken while the write is under way; the batcher hears of this batch
        // once its decisions are durable, so no vCPU goes on before the decision it waited for is.
        if (made < decisions.Length) Array.Resize(ref decisions, made);
        IDomainEvent[] events = made == 0 ? [] : [DecisionEvents.For(decisions)];
        var replyTo = f.ReplyTo;
        var batchId = f.Batch.BatchId;
        PersistPipelined(events, working, () => replyTo.Tell(new KvmFaultBatchResult(batchId, results)));
        if (_inFlight.Count == 0 && _memslotWaiting)
        {
            _memslotWaiting = false; // re-set by the memslot change itself if it must wait again
            Stash.UnstashAll();
        }
    }
}
