using ActorSim.Domain.Kvm;
using Akka.Actor;

namespace ActorSim.Actors;

/// <summary>Collects guest aborts for one VM into batches: one batch in flight to the KvmActor at a
/// time (one mm round trip, one decision pass, one journal write), answered vCPU by vCPU.
/// A batch closes when it reaches <c>maxBatch</c> or when the batcher has taken in everything that
/// was already in its mailbox when the batch opened (a zero-delay message to itself; Akka's
/// scheduler ticks every 10 ms, too coarse for a "short timer", and this keeps runs deterministic).
/// <para><b>Regrouping</b> (<c>regroupWait</c>, off unless given). With one batch in flight, a vCPU
/// whose abort arrives just after a batch closed rides the next batch, and the VM's vCPUs stay split
/// in cohorts from then on: each is answered while the other's batch is in flight, so each comes back
/// to find the other gone. Measured in the bench (a closed loop per vCPU): the first abort goes alone
/// and the rest follow, so at 8 vCPUs every batch was 7 or 1, at 64 never more than 63 — two mm round
/// trips, decision passes and journal commits where one would do. With regrouping, when a batch is
/// answered the next one waits until the vCPUs just answered have come back (as many aborts pending as
/// were answered plus those already waiting), or until <c>regroupWait</c> has passed if some do not
/// fault again; after such a timeout the next <see cref="RegroupSkipAfterTimeout"/> batches do not
/// wait. For closed loops only: in a workload in rounds (the seeded run waits for every access of a
/// round before the next) the aborts held back can be what the round waits for, and a vCPU that
/// retries alone comes back without the others, so each such batch waits out the timer: `actorsim
/// run` went from ~1,550 to ~450 accesses/s with it, ~1,150 with the skip. Waiting by passes through
/// the mailbox instead of a timer did not work: on two cores the batcher's passes took the CPU the
/// returning vCPUs needed. On in the bench; off in `actorsim run`, deterministic runs and
/// scenarios.</para>
/// The inbox is bounded: past <c>capacity</c> aborts waiting or in flight, an abort is answered
/// <see cref="GuestAbortRejected"/> and its vCPU backs off, so a flood slows producers instead of
/// growing memory.</summary>
public sealed class Stage2FaultBatcher : ReceiveActor, IWithTimers
{
    private readonly IActorRef _kvm;
    private readonly int _maxBatch;
    private readonly int _capacity;
    private readonly List<GuestAbort> _pending = [];
    private GuestAbort[] _inFlight = [];
    private long _nextBatch;
    private bool _flushScheduled;
    private readonly TimeSpan? _regroupWait;
    private int _regroupUntil; // > 0: the next batch waits until this many aborts are pending
    private int _regroupSkip;  // batches left to send without regrouping after a wait ran out

    /// <summary>After a regroup wait runs out (the vCPUs answered did not all fault again: a workload
    /// in rounds, a retry), this many batches go without waiting.</summary>
    public const int RegroupSkipAfterTimeout = 64;

    public ITimerScheduler Timers { get; set; } = null!;

    private sealed record Flush;
    private sealed record RegroupTimedOut;

    public Stage2FaultBatcher(IActorRef kvm, int maxBatch, int capacity, TimeSpan? regroupWait = null)
    {
        _kvm = kvm;
        _maxBatch = Math.Max(1, maxBatch);
        _capacity = Math.Max(_maxBatch, capacity);
        _regroupWait = regroupWait;
        Receive<GuestAbort>(OnAbort);
        Receive<Flush>(_ =>
        {
            _flushScheduled = false;
            if (_regroupUntil == 0) TrySend();
        });
        Receive<RegroupTimedOut>(_ =>
        {
            _regroupSkip = RegroupSkipAfterTimeout;
            EndRegroup();
        });
        Receive<KvmFaultBatchResult>(OnResult);
    }

    public static Props Props(IActorRef kvm, int maxBatch = 256, int capacity = 4096, TimeSpan? regroupWait = null) =>
        ActorProps.Of(() => new Stage2FaultBatcher(kvm, maxBatch, capacity, regroupWait));

    /// <summary>Aborts waiting or in flight now (for tests of the bound).</summary>
    public int Outstanding => _pending.Count + _inFlight.Length;

    private void OnAbort(GuestAbort a)
    {
        if (_pending.Count + _inFlight.Length >= _capacity)
        {
            a.ReplyTo.Tell(new GuestAbortRejected(a.Id));
            return;
        }
        _pending.Add(a);
        if (_pending.Count >= _maxBatch || (_regroupUntil > 0 && _pending.Count >= _regroupUntil)) EndRegroup();
        else if (_regroupUntil == 0 && !_flushScheduled)
        {
            _flushScheduled = true;
            Self.Tell(new Flush());
        }
    }

    private void EndRegroup()
    {
        if (_regroupUntil > 0) Timers.Cancel(nameof(RegroupTimedOut));
        _regroupUntil = 0;
        TrySend();
    }

    private void TrySend()
    {
        if (_inFlight.Length > 0 || _pending.Count == 0) return;
        var take = Math.Min(_pending.Count, _maxBatch);
        _inFlight = _pending.GetRange(0, take).ToArray();
        _pending.RemoveRange(0, take);
        _kvm.Tell(new KvmFaultBatch(++_nextBatch, _inFlight));
    }

    private void OnResult(KvmFaultBatchResult r)
    {
        var answered = _inFlight;
        _inFlight = [];
        for (var i = 0; i < answered.Length; i++) answered[i].ReplyTo.Tell(new GuestAbortCompleted(answered[i].Id, r.Results[i]));
        var regroup = Math.Min(answered.Length + _pending.Count, _maxBatch);
        if (_regroupSkip > 0) _regroupSkip--;
        else if (_regroupWait is { } wait && _pending.Count < regroup)
        {
            _regroupUntil = regroup;
            Timers.StartSingleTimer(nameof(RegroupTimedOut), new RegroupTimedOut(), wait);
        }
        if (_regroupUntil == 0) TrySend();
    }
}
