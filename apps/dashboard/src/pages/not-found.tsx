import { Link } from 'react-router';
import { PageHeader } from '@fleetwatch/ui';

export function NotFoundPage() {
  return (
    <>
      <PageHeader title="Not found" />
      <p>
        No page here. <Link to="/">Back to the overview</Link>
      </p>
    </>
  );
}
