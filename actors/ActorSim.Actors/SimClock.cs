using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Event;

namespace ActorSim.Actors;

/// <summary>The simulation's clock: the time every event is stamped with — by the journal on a
/// database (the event log's <c>time</c>) and in <see cref="DomainEventPublished.Time"/> — is Akka's
/// <see cref="ITimeProvider.Now"/> of the actor system's scheduler, so the actors and the persistence
/// plugins read one clock without knowing each other. By default that is the wall clock (a run in real
/// time); in deterministic mode (<see cref="SimHost.BaseConfig"/>) it is <see cref="VirtualClockScheduler"/>'s
/// virtual time, which starts at <see cref="VirtualClockScheduler.Epoch"/> and moves only when the
/// simulation moves it (<see cref="Advance"/>): by <see cref="RoundDuration"/> at the start of each
/// round of a seeded run and each step of a scenario — so a seeded deterministic run stamps the same
/// times every time.</summary>
public static class SimClock
{
    /// <summary>The simulated time a round of the seeded workload, or a scenario step, takes (a unit, not
    /// a measurement: nothing in the model has a duration).</summary>
    public static readonly TimeSpan RoundDuration = TimeSpan.FromMilliseconds(1);

    /// <summary>Now, as UTC ticks.</summary>
    public static long Now(ActorSystem system) => system.Scheduler.Now.UtcTicks;

    /// <summary>Moves virtual time on by <paramref name="by"/>; the wall clock moves by itself (nothing
    /// done). For determinism, call it from inside an actor's turn, as the round driver does: in
    /// deterministic mode that is the one dispatcher thread, so it falls at the same point among the
    /// journal's writes every time.</summary>
    public static void Advance(ActorSystem system, TimeSpan by)
    {
        if (system.Scheduler is VirtualClockScheduler v) v.Advance(by);
    }

    /// <summary>An actor that moves the clock in its turn and answers <see cref="Advanced"/>, for a driver
    /// outside the actor system (the scenario runner between steps).</summary>
    public sealed class Advancer : ReceiveActor
    {
        public sealed record Advance(TimeSpan By);
        public sealed record Advanced(long Now);

        public Advancer() => Receive<Advance>(m =>
        {
            SimClock.Advance(Context.System, m.By);
            Sender.Tell(new Advanced(Now(Context.System)));
        });
    }
}

/// <summary>Akka's default scheduler (<see cref="HashedWheelTimerScheduler"/>, which is sealed, so held
/// and called through its public interfaces) for every timer, with a virtual <see cref="ITimeProvider.Now"/>:
/// deterministic mode's clock (<see cref="SimClock"/>). Timers — a vCPU's back-off after a rejection, ask
/// timeouts, the journal's circuit breaker — still run on the wall clock (<see cref="MonotonicClock"/>
/// too); a deterministic run sets none that decides anything unless something fails. Chosen by
/// <c>akka.scheduler.implementation</c>, which Akka constructs with the system's config and log.</summary>
public sealed class VirtualClockScheduler : SchedulerBase, IDisposable
{
    /// <summary>Where virtual time starts: the Unix epoch, so a virtual time reads as how long the
    /// simulation ran (1970-01-01T00:00:00.040Z = 40 rounds).</summary>
    public static readonly DateTimeOffset Epoch = DateTimeOffset.UnixEpoch;

    private readonly HashedWheelTimerScheduler _timers;
    private long _ticks = Epoch.UtcTicks;

    public VirtualClockScheduler(Config scheduler, ILoggingAdapter log) : base(scheduler, log) => _timers = new HashedWheelTimerScheduler(scheduler, log);

    public void Advance(TimeSpan by)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(by, TimeSpan.Zero);
        Interlocked.Add(ref _ticks, by.Ticks);
    }

    protected override DateTimeOffset TimeNow => new(Volatile.Read(ref _ticks), TimeSpan.Zero);
    public override TimeSpan MonotonicClock => _timers.MonotonicClock;
    public override TimeSpan HighResMonotonicClock => _timers.HighResMonotonicClock;

    protected override void InternalScheduleTellOnce(TimeSpan delay, ICanTell receiver, object message, IActorRef sender, ICancelable cancelable) =>
        ((ITellScheduler)_timers).ScheduleTellOnce(delay, receiver, message, sender, cancelable);

    protected override void InternalScheduleTellRepeatedly(TimeSpan initialDelay, TimeSpan interval, ICanTell receiver, object message, IActorRef sender, ICancelable cancelable) =>
        ((ITellScheduler)_timers).ScheduleTellRepeatedly(initialDelay, interval, receiver, message, sender, cancelable);

    protected override void InternalScheduleOnce(TimeSpan delay, Action action, ICancelable cancelable) =>
        ((IActionScheduler)_timers).ScheduleOnce(delay, action, cancelable);

    protected override void InternalScheduleOnce(TimeSpan delay, IRunnable action, ICancelable cancelable) =>
        _timers.ScheduleOnce(delay, action, cancelable);

    protected override void InternalScheduleRepeatedly(TimeSpan initialDelay, TimeSpan interval, Action action, ICancelable cancelable) =>
        ((IActionScheduler)_timers).ScheduleRepeatedly(initialDelay, interval, action, cancelable);

    protected override void InternalScheduleRepeatedly(TimeSpan initialDelay, TimeSpan interval, IRunnable action, ICancelable cancelable) =>
        _timers.ScheduleRepeatedly(initialDelay, interval, action, cancelable);

    public void Dispose() => _timers.Dispose();
}
