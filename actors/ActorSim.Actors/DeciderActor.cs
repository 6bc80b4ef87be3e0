using ActorSim.Domain;
using Akka.Actor;
using Akka.Persistence;

namespace ActorSim.Actors;

/// <summary>A persistent actor that owns one decider's state: it persists the events a Decide
/// returned, folds each into its state with the decider's Evolve, publishes it on the EventStream,
/// and recovers by folding its journal. Subclasses stay thin: messages in, Decide, persist, tell.</summary>
public abstract class DeciderActor<TState> : ReceivePersistentActor, IWithStash
{
    private readonly int _snapshotEvery;
    private long _sinceSnapshot;

    /// <param name="snapshotEvery">Save the state as a snapshot every this many events (0: never);
    /// recovery then starts from the newest snapshot.</param>
    protected DeciderActor(string persistenceId, TState initial, int snapshotEvery = 0)
    {
        PersistenceId = persistenceId;
        State = initial;
        _snapshotEvery = snapshotEvery;
        Recover<SnapshotOffer>(o => State = (TState)o.Snapshot);
        Recover<IDomainEvent>(e => State = Evolve(State, e));
        Command<SaveSnapshotSuccess>(s => DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1)));
        Command<SaveSnapshotFailure>(_ => { });
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(_ => { });
    }

    public override string PersistenceId { get; }
    protected TState State { get; private set; }
    protected abstract TState Evolve(TState state, IDomainEvent e);

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

    /// <summary>Like <see cref="PersistEvents"/> for a caller that has already folded the events into
    /// <paramref name="after"/> while deciding (a fault batch evolves a working state fault by fault):
    /// the events are published one by one, and the state becomes <paramref name="after"/> once they
    /// are all persisted, instead of being folded a second time. The actor takes no other command
    /// while a persist is under way, so State is still the state the caller started from.</summary>
    protected void PersistEvolved(IReadOnlyList<IDomainEvent> events, TState after, Action then)
    {
        if (events.Count == 0) then();
        else PersistAll(events, OnPersisted(events.Count, after, publish: true, then));
    }

    /// <summary>Like <see cref="PersistEvolved"/>, but the events are published now, and written with
    /// PersistAllAsync: the actor goes on taking messages (it must hold back, itself, whatever needs
    /// the new state) and the write is handed to the journal when this message's handling ends. For a
    /// reply that may go out before the events are durable, sent from a later message.</summary>
    protected void PersistEvolvedPublishedNow(IReadOnlyList<IDomainEvent> events, TState after, Action then)
    {
        if (events.Count == 0)
        {
            then();
            return;
        }
        foreach (var e in events) Publish(e);
        PersistAllAsync(events, OnPersisted(events.Count, after, publish: false, then));
    }

    /// <summary>The handler for <paramref name="count"/> already-folded events: counts each towards
    /// the next snapshot (publishing it if asked); after the last, State becomes
    /// <paramref name="after"/>, a snapshot is saved if one fell due, and <paramref name="then"/> runs.</summary>
    private Action<IDomainEvent> OnPersisted(int count, TState after, bool publish, Action then)
    {
        var snapshot = false;
        return e =>
        {
            if (publish) Publish(e);
            snapshot |= SnapshotDue();
            if (--count > 0) return;
            State = after;
            if (snapshot) SaveSnapshot(State!);
            then();
        };
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
        if (SnapshotDue()) SaveSnapshot(State!);
    }

    private void Publish(IDomainEvent e) => Context.System.EventStream.Publish(new DomainEventPublished(PersistenceId, e));

    /// <summary>Counts one persisted event; true every <c>snapshotEvery</c> events.</summary>
    private bool SnapshotDue()
    {
        if (_snapshotEvery <= 0 || ++_sinceSnapshot < _snapshotEvery) return false;
        _sinceSnapshot = 0;
        return true;
    }
}
