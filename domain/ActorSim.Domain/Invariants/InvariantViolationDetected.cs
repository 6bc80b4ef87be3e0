namespace ActorSim.Domain.Invariants;

/// <summary>The invariant checker found a §7 invariant broken after the event with global sequence
/// number <paramref name="Seq"/> of stream <paramref name="Stream"/>.</summary>
public sealed record InvariantViolationDetected(long Seq, string Stream, string Invariant, string Detail) : IDomainEvent;
