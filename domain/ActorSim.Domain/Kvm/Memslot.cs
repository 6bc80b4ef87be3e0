using ActorSim.Domain.Kernel;

namespace ActorSim.Domain.Kvm;

/// <summary>KVM_MEM_* flags of struct kvm_userspace_memory_region.</summary>
[Flags]
public enum MemslotFlags : uint
{
    None = 0,
    KVM_MEM_LOG_DIRTY_PAGES = 1 << 0,
    KVM_MEM_READONLY = 1 << 1,
    KVM_MEM_GUEST_MEMFD = 1 << 2,
}

/// <summary>A memslot: guest-physical [BaseGpa, BaseGpa + Size) backed by userspace [UserspaceAddr, +Size).</summary>
public sealed record Memslot(int Id, ulong BaseGpa, ulong Size, ulong UserspaceAddr, MemslotFlags Flags)
{
    public ulong EndGpa => BaseGpa + Size;
    public bool ContainsGpa(ulong gpa) => gpa >= BaseGpa && gpa < EndGpa;
    public ulong GpaToHva(ulong gpa) => UserspaceAddr + (gpa - BaseGpa);
    public bool ReadOnly => Flags.HasFlag(MemslotFlags.KVM_MEM_READONLY);
    /// <summary>memslot_is_logging: dirty tracking on and not read-only.</summary>
    public bool LoggingActive => Flags.HasFlag(MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES) && !ReadOnly;
    public bool OverlapsHva(ulong start, ulong end) => UserspaceAddr < end && start < UserspaceAddr + Size;
}

/// <summary>A guest access as the exception syndrome reports it.</summary>
public enum AccessOp : byte { Read, Write, Exec }

/// <summary>A stage-2 leaf: the block it maps, its level (3 page, 2 PMD, 1 PUD), the prot KVM asked
/// for and the descriptor it wrote.</summary>
public readonly record struct Stage2Leaf(ulong Gpa, int Level, Stage2.KvmPgtableProt Prot, ulong Descriptor)
{
    public ulong Size => PageGeometry.SizeOfLevel(Level);
    public ulong EndGpa => Gpa + Size;
    public ulong Pfn => Stage2.Stage2Descriptor.PfnOf(Descriptor);
    public byte MemAttr => Stage2.Stage2Descriptor.MemAttrOf(Descriptor);
    public bool Readable => (Descriptor & Stage2.Stage2Descriptor.S2apR) != 0;
    public bool Writable => (Descriptor & Stage2.Stage2Descriptor.S2apW) != 0;
    public bool Executable => (Descriptor & Stage2.Stage2Descriptor.XnBit) == 0;
    public bool Contains(ulong gpa) => gpa >= Gpa && gpa < EndGpa;

    /// <summary>Does this leaf let the access through without a fault?</summary>
    public bool Permits(AccessOp op) => op switch
    {
        AccessOp.Read => Readable,
        AccessOp.Write => Writable,
        _ => Executable && Readable,
    };
}
