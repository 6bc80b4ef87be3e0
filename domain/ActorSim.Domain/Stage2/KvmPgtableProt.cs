namespace ActorSim.Domain.Stage2;

/// <summary><c>enum kvm_pgtable_prot</c> (arch/arm64/include/asm/kvm_pgtable.h). NORMAL_NC was added
/// by c034ec84e879 (v6.9).</summary>
[Flags]
public enum KvmPgtableProt : ulong
{
    None = 0,
    KVM_PGTABLE_PROT_X = 1UL << 0,
    KVM_PGTABLE_PROT_W = 1UL << 1,
    KVM_PGTABLE_PROT_R = 1UL << 2,
    KVM_PGTABLE_PROT_DEVICE = 1UL << 3,
    KVM_PGTABLE_PROT_NORMAL_NC = 1UL << 4,
    KVM_PGTABLE_PROT_SW0 = 1UL << 55,
    KVM_PGTABLE_PROT_SW1 = 1UL << 56,
    KVM_PGTABLE_PROT_SW2 = 1UL << 57,
    KVM_PGTABLE_PROT_SW3 = 1UL << 58,
}
