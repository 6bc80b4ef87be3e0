using ActorSim.Domain.Kvm;
using Akka.Actor;

namespace ActorSim.Actors;

/// <summary>Collects guest aborts for one VM into batches: one batch in flight to the KvmActor at a
/// time (one mm round trip, one decision pass, one journal write), answered vCPU by vCPU.
/// A batch closes when it reaches <c>maxBatch</c> or when the batcher has taken in everything that
/// was already in its mailbox when the batch opened (a zero-delay message to itself; Akka's
/// scheduler ticks every 10 ms, too coarse for a "short timer", and this keeps runs deterministic).
/// The inbox is bounded: past <c>capacity</c> aborts waiting or in flight, an abort is answered
/// <see cref="GuestAbortRejected"/> and its vCPU backs off, so a flood slows producers instead of
/// growing memory.</summary>
public sealed class Stage2FaultBatcher : ReceiveActor
{
    private readonly IActorRef _kvm;
    private readonly int _maxBatch;
    private readonly int _capacity;
    private readonly List<GuestAbort> _pending = [];
    private GuestAbort[] _inFlight = [];
    private long _nextBatch;
    private bool _flushScheduled;

    private sealed record Flush;

    public Stage2FaultBatcher(IActorRef kvm, int maxBatch, int capacity)
    {
        _kvm = kvm;
        _maxBatch = Math.Max(1, maxBatch);
        _capacity = Math.Max(_maxBatch, capacity);
        Receive<GuestAbort>(OnAbort);
        Receive<Flush>(_ => { _flushScheduled = false; TrySend(); });
        Receive<KvmFaultBatchResult>(OnResult);
    }

    public static Props Props(IActorRef kvm, int maxBatch = 256, int capacity = 4096) =>
        ActorProps.Of(() => new Stage2FaultBatcher(kvm, maxBatch, capacity));

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
        if (_pending.Count >= _maxBatch) TrySend();
        else if (!_flushScheduled)
        {
            _flushScheduled = true;
            Self.Tell(new Flush());
        }
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
        TrySend();
    }
}
