using Akka.Actor;

namespace ActorSim.Actors;

/// <summary>A vCPU: runs guest accesses one at a time, as a real vCPU has at most one fault
/// outstanding. Each access goes to the VM's batcher as a <see cref="GuestAbort"/>; a rejection
/// (batcher full) is retried after a short back-off.</summary>
public sealed class VcpuActor : ReceiveActor, IWithStash, IWithTimers
{
    private readonly int _index;
    private readonly IActorRef _batcher;
    private readonly TimeSpan _backoff;
    private long _nextId;
    private (long Id, VcpuRunAccess Access, IActorRef ReplyTo)? _current;

    public IStash Stash { get; set; } = null!;
    public ITimerScheduler Timers { get; set; } = null!;

    private sealed record RetryAbort(long Id);

    public VcpuActor(int index, IActorRef batcher, TimeSpan backoff)
    {
        _index = index;
        _batcher = batcher;
        _backoff = backoff;
        Receive<VcpuRunAccess>(OnRun);
        Receive<GuestAbortCompleted>(OnCompleted);
        Receive<GuestAbortRejected>(r => Timers.StartSingleTimer("retry", new RetryAbort(r.Id), _backoff));
        Receive<RetryAbort>(r =>
        {
            if (_current is { } c && c.Id == r.Id) Send(c.Id, c.Access);
        });
    }

    public static Props Props(int index, IActorRef batcher, TimeSpan? backoff = null) =>
        ActorProps.Of(() => new VcpuActor(index, batcher, backoff ?? TimeSpan.FromMilliseconds(1)));

    private void OnRun(VcpuRunAccess m)
    {
        if (_current is not null)
        {
            Stash.Stash();
            return;
        }
        var id = ++_nextId;
        _current = (id, m, Sender);
        Send(id, m);
    }

    private void Send(long id, VcpuRunAccess m) => _batcher.Tell(new GuestAbort(id, _index, m.Gpa, m.Op, Self));

    private void OnCompleted(GuestAbortCompleted c)
    {
        if (_current is not { } cur || cur.Id != c.Id) return;
        _current = null;
        cur.ReplyTo.Tell(new VcpuAccessDone(cur.Access.Gpa, cur.Access.Op, c.Result));
        Stash.Unstash();
    }
}
