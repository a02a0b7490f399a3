import { Button } from '@fleetwatch/ui';

/** A small danger button that acts only once the person confirmed `question` (a host's or an instance's removal). */
export function RemoveButton({
  label,
  question,
  pending,
  onConfirmed,
}: {
  label: string;
  question: string;
  pending: boolean;
  onConfirmed: () => void;
}) {
  return (
    <Button
      size="small"
      variant="danger"
      disabled={pending}
      onClick={() => {
        if (window.confirm(question)) onConfirmed();
      }}
    >
      {label}
    </Button>
  );
}
