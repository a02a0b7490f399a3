import type { RouteObject } from 'react-router';
import { PublicStatusPageRoute } from '../public-status/public-status-page';
import { StatusPageEditPage } from './status-page-edit-page';
import { StatusPagesPage } from './status-pages-page';
import { PerId } from '../../stored-draft';

/** The editor's routes, inside the signed-in shell. */
export const statusPageRoutes: RouteObject[] = [
  { path: 'status-pages', element: <StatusPagesPage /> },
  { path: 'status-pages/new', element: <StatusPageEditPage /> },
  {
    path: 'status-pages/:id',
    element: (
      <PerId>
        <StatusPageEditPage />
      </PerId>
    ),
  },
];

/** The public page: outside the shell, so it needs no session. */
export const publicStatusRoutes: RouteObject[] = [{ path: '/status/:slug', element: <PublicStatusPageRoute /> }];
