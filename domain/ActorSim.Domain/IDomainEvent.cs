using ActorSim.Domain.Kernel;

namespace ActorSim.Domain;

/// <summary>Marker for every event a decider emits. Events are past-tense immutable records carrying
/// what changed; together with the initial state they rebuild the state by folding Evolve.</summary>
public interface IDomainEvent;

/// <summary>The result of a Decide: either events (possibly none) or the kernel's errno, never both.</summary>
public readonly record struct Decision(Errno Errno, IReadOnlyList<IDomainEvent> Events)
{
    public static Decision Fail(Errno errno) => new(errno, []);
    public static Decision Ok(params IDomainEvent[] events) => new(Errno.None, events);
    public static Decision Ok(IReadOnlyList<IDomainEvent> events) => new(Errno.None, events);
    public bool Succeeded => Errno == Errno.None;
}
