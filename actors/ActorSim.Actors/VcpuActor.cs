using ActorSim.Domain.Kvm;
using System.Diagnostics;
using Akka.Actor;

namespace ActorSim.Actors;

/// <summary>A vCPU: runs guest accesses one at a time, as a real vCPU has at most one fault
/// outstanding. Each access goes to the VM's batcher as a <see cref="GuestAbort"/>; a rejection
/// (batcher full) is retried after a short back-off. It runs one access (<see cref="VcpuRunAccess"/>)
/// or a sequence of them (<see cref="VcpuRunSequence"/>: the next abort leaves as soon as the last is
/// answered, as KVM_RUN keeps a vCPU in the guest across stage-2 faults without a return to user
/// space); what arrives meanwhile waits its turn.</summary>
public sealed class VcpuActor : ReceiveActor, IWithStash, IWithTimers
{
    private readonly int _index;
    private readonly IActorRef _batcher;
    private readonly TimeSpan _backoff;
    private long _nextId;
    private (long Id, ulong Gpa, AccessOp Op, AbortSyndrome Syndrome)? _abort; // the guest abort in flight
    private (VcpuRunAccess Access, IActorRef ReplyTo)? _access;  // a single access being run
    private Sequence? _sequence;                                  // or a sequence

    public IStash Stash { get; set; } = null!;
    public ITimerScheduler Timers { get; set; } = null!;

    private sealed record RetryAbort(long Id);

    private sealed class Sequence(VcpuRunSequence run, IActorRef replyTo)
    {
        public readonly VcpuRunSequence Run = run;
        public readonly IActorRef ReplyTo = replyTo;
        public readonly HdrHistogram.LongHistogram Latency = VcpuSequenceDone.NewLatencyHistogram();
        /// <summary><see cref="VcpuRunSequence.Until"/> as a <see cref="Stopwatch"/> timestamp: one clock
        /// read per access serves the latency, the deadline and the next access's start.</summary>
        public readonly long Deadline = DeadlineOf(run.Until);
        public long Done;
        public long SentAt;

        private static long DeadlineOf(DateTime? until)
        {
            if (until is not { } u) return long.MaxValue;
            var now = Stopwatch.GetTimestamp();
            var ticks = Math.Max(0, (u - DateTime.UtcNow).TotalSeconds * Stopwatch.Frequency);
            return ticks >= long.MaxValue - now ? long.MaxValue : now + (long)ticks; // a deadline past the clock's range: none
        }
    }

    public VcpuActor(int index, IActorRef batcher, TimeSpan backoff)
    {
        _index = index;
        _batcher = batcher;
        _backoff = backoff;
        Receive<VcpuRunAccess>(OnRun);
        Receive<VcpuRunSequence>(OnRunSequence);
        Receive<GuestAbortCompleted>(OnCompleted);
        Receive<GuestAbortRejected>(r => Timers.StartSingleTimer("retry", new RetryAbort(r.Id), _backoff));
        Receive<RetryAbort>(r =>
        {
            if (_abort is { } a && a.Id == r.Id) Send(a.Id, a.Gpa, a.Op, a.Syndrome);
        });
    }

    public static Props Props(int index, IActorRef batcher, TimeSpan? backoff = null) =>
        ActorProps.Of(() => new VcpuActor(index, batcher, backoff ?? TimeSpan.FromMilliseconds(1)));

    private bool Busy => _access is not null || _sequence is not null;

    private void OnRun(VcpuRunAccess m)
    {
        if (Busy)
        {
            Stash.Stash();
            return;
        }
        _access = (m, Sender);
        Abort(m.Gpa, m.Op, m.Syndrome);
    }

    private void OnRunSequence(VcpuRunSequence m)
    {
        if (Busy)
        {
            Stash.Stash();
            return;
        }
        if (m.Count <= 0)
        {
            Sender.Tell(new VcpuSequenceDone(0, VcpuSequenceDone.NewLatencyHistogram()));
            return;
        }
        _sequence = new Sequence(m, Sender);
        NextOfSequence(_sequence, Stopwatch.GetTimestamp());
    }

    private void NextOfSequence(Sequence s, long now)
    {
        s.SentAt = now;
        Abort(s.Run.Gpa + (ulong)s.Done * s.Run.Stride, s.Run.Op, AbortSyndrome.None);
    }

    private void Abort(ulong gpa, AccessOp op, AbortSyndrome syndrome)
    {
        var id = ++_nextId;
        _abort = (id, gpa, op, syndrome);
        Send(id, gpa, op, syndrome);
    }

    private void Send(long id, ulong gpa, AccessOp op, AbortSyndrome syndrome) => _batcher.Tell(new GuestAbort(id, _index, gpa, op, Self, syndrome));

    private void OnCompleted(GuestAbortCompleted c)
    {
        if (_abort is not { } a || a.Id != c.Id) return;
        _abort = null;
        if (_access is { } x)
        {
            _access = null;
            x.ReplyTo.Tell(new VcpuAccessDone(x.Access.Gpa, x.Access.Op, c.Result));
            Stash.Unstash();
        }
        else if (_sequence is { } s)
        {
            var now = Stopwatch.GetTimestamp();
            s.Latency.RecordValue(Math.Clamp(now - s.SentAt, 1, VcpuSequenceDone.MaxLatencyTicks));
            s.Done++;
            if (s.Done < s.Run.Count && now < s.Deadline) NextOfSequence(s, now);
            else
            {
                _sequence = null;
                s.ReplyTo.Tell(new VcpuSequenceDone(s.Done, s.Latency));
                Stash.Unstash();
            }
        }
    }
}
