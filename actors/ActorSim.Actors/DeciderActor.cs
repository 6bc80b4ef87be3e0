using ActorSim.Domain;
using Akka.Actor;
using Akka.Persistence;

namespace ActorSim.Actors;

/// <summary>When a decider actor saves its state as a snapshot.</summary>
/// <param name="Every">A snapshot every this many events (0: never); recovery starts from the newest.</param>
/// <param name="DropCoveredEvents">After a snapshot is saved, delete the events it covers from the
/// journal, keeping only what recovery needs. For runs without a database only (the
/// <see cref="InMemoryJournal"/>), where nothing reads the journal back but recovery and an
/// ever-growing journal is memory that only grows; a database's journal is the run's record and
/// keeps every event.</param>
public readonly record struct SnapshotPolicy(int Every, bool DropCoveredEvents = false)
{
    public static readonly SnapshotPolicy Never = default;
}

/// <summary>A persistent actor that owns one decider's state: it persists the events a Decide
/// returned, folds each into its state with the decider's Evolve, publishes it on the EventStream,
/// and recovers by folding its journal. Subclasses stay thin: messages in, Decide, persist, tell.</summary>
public abstract class DeciderActor<TState> : ReceivePersistentActor, IWithStash
{
    private readonly SnapshotPolicy _snapshots;
    private long _sinceSnapshot;

    protected DeciderActor(string persistenceId, TState initial, SnapshotPolicy snapshots = default)
    {
        PersistenceId = persistenceId;
        State = initial;
        _snapshots = snapshots;
        Recover<SnapshotOffer>(o => State = (TState)o.Snapshot);
        Recover<IDomainEvent>(e => State = Evolve(State, e));
        Command<SaveSnapshotSuccess>(s =>
        {
            DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1));
            if (_snapshots.DropCoveredEvents) DeleteMessages(s.Metadata.SequenceNr);
        });
        Command<SaveSnapshotFailure>(_ => { });
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(_ => { });
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(_ => { }); // kept, not lost: the next snapshot's delete covers them
    }

    public override string PersistenceId { get; }
    protected TState State { get; private set; }
    protected abstract TState Evolve(TState state, IDomainEvent e);

    /// <summary>The state, for something that keeps it beyond this message (a snapshot, an answer to a
    /// state query). An actor that changes parts of its own state in place (<see cref="KvmActor"/>'s
    /// stage-2 edit) stops changing those parts here.</summary>
    protected virtual TState HandOut() => State;

    /// <summary>Persists the events in one journal write, applies and publishes each, then runs
    /// <paramref name="then"/> (also when there is nothing to persist).</summary>
    protected void PersistEvents(IReadOnlyList<IDomainEvent> events, Action then)
    {
        if (events.Count == 0)
        {
            then();
            return;
        }
        var left = events.Count;
        PersistAll(events, e =>
        {
            Apply(e);
            if (--left == 0) then();
        });
    }

    /// <summary>A pipelined write, for a decision the actor must not wait on: the events, already
    /// folded into <paramref name="after"/>, become the state and are published now, and are written
    /// with PersistAllAsync, so the actor goes on taking messages — its next decision starts from this
    /// state while the write is under way. <paramref name="then"/> runs once the events are durable
    /// (with no events: once every earlier pipelined write is, so nothing answered from a state that is
    /// not yet durable goes out before it). This is sound because the journal commits one actor's
    /// writes in the order they were made, a failed write stops the actor (Akka), and a rejected one
    /// restarts it (<see cref="OnPersistRejected"/>): either way the state is recovered from what was
    /// written. A snapshot falls due only when no pipelined write is outstanding, so its state never
    /// runs ahead of its sequence number.</summary>
    protected void PersistPipelined(IReadOnlyList<IDomainEvent> events, TState after, Action then)
    {
        if (events.Count == 0)
        {
            WhenDurable(then);
            return;
        }
        State = after;
        foreach (var e in events) Publish(e);
        _pipelinedWrites++;
        var left = events.Count;
        PersistAllAsync(events, _ =>
        {
            _snapshotPending |= SnapshotDue();
            if (--left > 0) return;
            if (--_pipelinedWrites == 0 && _snapshotPending)
            {
                _snapshotPending = false;
                SaveSnapshot(HandOut());
            }
            then();
        });
    }

    /// <summary>Runs <paramref name="then"/> once every pipelined write made so far is durable (now, if
    /// none is under way): for answers that show the state, such as a state query, which must not
    /// show what a crash could still take back.</summary>
    protected void WhenDurable(Action then)
    {
        if (_pipelinedWrites == 0) then();
        else DeferAsync(Drained.Instance, _ => then());
    }

    private int _pipelinedWrites;
    private bool _snapshotPending;

    private sealed class Drained
    {
        public static readonly Drained Instance = new();
    }

    /// <summary>A rejected write (its payload could not be serialized) would leave a pipelined state
    /// ahead of the journal: restart, and recover from what was written.</summary>
    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        base.OnPersistRejected(cause, @event, sequenceNr);
        throw new InvalidOperationException($"{PersistenceId}: event {sequenceNr} ({@event.GetType().Name}) was rejected by the journal", cause);
    }

    /// <summary>Persists one event, applies and publishes it, then runs <paramref name="then"/>.</summary>
    protected void PersistEvent(IDomainEvent e, Action then) => Persist(e, x =>
    {
        Apply(x);
        then();
    });

    private void Apply(IDomainEvent e)
    {
        State = Evolve(State, e);
        Publish(e);
        if (SnapshotDue()) SaveSnapshot(HandOut());
    }

    private void Publish(IDomainEvent e) => Context.System.EventStream.Publish(new DomainEventPublished(PersistenceId, e, SimClock.Now(Context.System)));

    /// <summary>Counts one persisted event; true every <see cref="SnapshotPolicy.Every"/> events.</summary>
    private bool SnapshotDue()
    {
        if (_snapshots.Every <= 0 || ++_sinceSnapshot < _snapshots.Every) return false;
        _sinceSnapshot = 0;
        return true;
    }
}
